// Many keep-alive connections that each send one request, read its response
// and then stay open doing nothing: what an agent must hold per connection
// when a server has many idle clients. Connections are opened at a steady
// rate, at most `concurrency` at a time (a listen backlog is finite), so the
// agent sees clients arrive rather than one burst; the caller raises the
// open-file limit.

import * as net from 'node:net';

export interface IdleConnections {
  /** Connections that are open and got their response. */
  readonly open: number;
  /** Connections that failed to connect or lost their response. */
  readonly failed: number;
  /** Responses with a 2xx status. */
  readonly ok: number;
  /** Destroys every connection; resolves once all are closed. */
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One connection: connect, one GET, wait for the whole response (Content-Length framed). */
function oneRequest(port: number, path: string): Promise<{ socket: net.Socket; status: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf: Buffer = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('close', () => reject(new Error('closed before the response')));
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: idle-connections\r\n\r\n`));
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const end = buf.indexOf(HEADER_END);
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (buf.length < end + 4 + (m ? Number(m[1]) : 0)) return;
      socket.off('data', onData);
      socket.off('error', fail);
      // Idle from here: errors and data are ignored, the socket just stays open.
      socket.on('error', () => {});
      resolve({ socket, status: Number(head.slice(9, 12)) });
    };
    socket.on('data', onData);
  });
}

export interface IdleOptions {
  /** Connections opened per second (default 1000). */
  readonly ratePerSecond?: number;
  readonly concurrency?: number;
  readonly path?: string;
}

export async function openIdleConnections(port: number, n: number, o: IdleOptions = {}): Promise<IdleConnections> {
  const rate = o.ratePerSecond ?? 1000;
  const path = o.path ?? '/small';
  const sockets: net.Socket[] = [];
  let failed = 0;
  let ok = 0;
  let next = 0;
  const start = Date.now();
  const worker = async () => {
    while (next < n) {
      const wait = start + (next * 1000) / rate - Date.now();
      next++;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        const r = await oneRequest(port, path);
        sockets.push(r.socket);
        if (r.status >= 200 && r.status < 300) ok++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 256, n) }, worker));
  return {
    open: sockets.filter((s) => !s.destroyed).length,
    failed,
    ok,
    async close() {
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.closed) return resolve();
              s.once('close', () => resolve());
              s.destroy();
            }),
        ),
      );
    },
  };
}
