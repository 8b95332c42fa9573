// A throwaway nginx reverse proxy for tests: Debian's /usr/sbin/nginx with
// its own prefix in a mkdtemp folder (no /etc/nginx, no Debian service),
// one worker, listening on a random loopback port, proxying /r/<id> to
// /b/<id> (and, with `mirror`, to /m/r/<id> in a subrequest) on an
// upstream block of the given servers over keep-alive
// connections (HTTP/1.1, `keepalive 16`), with retries on errors, timeouts
// and 502s on the next server. stop() ends it (SIGQUIT is nginx's graceful
// stop; SIGTERM its fast one) and removes the folder.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { childrenOf } from './agent';
import { freePort } from './ports';

export const NGINX = '/usr/sbin/nginx';

export interface NginxServer {
  readonly port: number;
  readonly masterPid: number;
  /** The one worker: the process that proxies. */
  readonly workerPid: number;
  readonly dir: string;
  /** nginx's error log so far. */
  errorLog(): string;
  stop(): Promise<void>;
}

export interface NginxProxyOptions {
  /** The nginx executable (default: Debian's). */
  readonly binary?: string;
  /** Upstream servers (loopback ports), tried round-robin; none is ever marked down (max_fails=0). */
  readonly upstreams: readonly number[];
  /** proxy_read_timeout and proxy_connect_timeout, seconds. */
  readonly timeoutS?: number;
  /** Every /r/<id> is mirrored (a subrequest) to /m/r/<id> on the same upstream block. */
  readonly mirror?: boolean;
}

export function nginxAvailable(): boolean {
  return fs.existsSync(NGINX);
}

/** One worker, everything nginx writes kept in `dir`, no access log: the head of every throwaway nginx's configuration, up to inside `http {`. */
export function nginxPrelude(dir: string, errorLevel: 'info' | 'warn'): string {
  return `worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${errorLevel};
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
`;
}

export function nginxConfig(dir: string, port: number, o: NginxProxyOptions): string {
  const t = o.timeoutS ?? 1;
  return `${nginxPrelude(dir, 'info')}  upstream backend {
${o.upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 100000;
    location /r/ {${o.mirror ? '\n      mirror /mirror;' : ''}
      proxy_pass http://backend/b/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 0;
      proxy_connect_timeout ${t}s;
      proxy_read_timeout ${t}s;
    }
    location = /mirror {
      internal;
      proxy_pass http://backend/m$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_connect_timeout ${t}s;
      proxy_read_timeout ${t}s;
    }
  }
}
`;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function startNginx(o: NginxProxyOptions): Promise<NginxServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-test-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, port, o));
  let stderr = '';
  const child: ChildProcess = spawn(o.binary ?? NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  let workers: number[] = [];
  for (let i = 0; i < 100; i++) {
    workers = childrenOf(child.pid!);
    if (workers.length === 1 && (await accepts(port))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (workers.length !== 1 || !(await accepts(port))) {
    child.kill('SIGKILL');
    throw new Error(`nginx did not start (workers ${JSON.stringify(workers)}, port ${port}): ${stderr}\n${errorLog()}`);
  }
  return {
    port,
    masterPid: child.pid!,
    workerPid: workers[0]!,
    dir,
    errorLog,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
