// Deep HTTP/1 pipelining, end to end with real eBPF: 100 and 1000 GETs sent
// in one write to a real Python http.server (which reads 8 KiB at a time and
// answers what it read before reading on), traced by the real CLI, exported
// to a real OTLP receiver. Every request must be exactly one SERVER span with
// its own path and status (issue 12 item 2: past 64 deep, none was).

import * as net from 'node:net';
import * as path from 'node:path';
import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const SERVER_KIND = 2;

const otlp = useOtlpReceiver(anyTest);

/** Sends `depth` GETs in one write on one connection; resolves when every response has come. */
function pipeline(port: number, depth: number, tag: string): Promise<number> {
  const requests = Array.from({ length: depth }, (_, i) => `GET /items/${tag}-${i} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`).join('');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(requests));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      got += d;
      const n = got.split('HTTP/1.1 200 OK').length - 1;
      if (n === depth && got.endsWith(`"${tag}-${depth - 1}"}`)) {
        socket.end();
        resolve(n);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(20000, () => reject(new Error(`timeout after ${got.length} bytes`)));
  });
}

test('Python http.server, 100 and 1000 GETs pipelined in one write: one exact SERVER span per request', async (t) => {
  const server = await startWorkload(PY, [path.join(ROOT, 'test', 'e2e', 'programs', 'http_server.py')], { OTEL_SERVICE_NAME: 'e2e-pipelining' });
  const port = server.hello.port as number;
  try {
    const agent = await startAgent(['run', '--exe', 'python3'], { env: otlp.env() });
    t.is(await pipeline(port, 100, 'a'), 100);
    t.is(await pipeline(port, 1000, 'b'), 1000);
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));

    const spans = otlp.receiver.spans.filter((s) => s.resource['process.pid'] === server.pid);
    t.is(spans.length, 1100, 'exactly one span per request');
    t.deepEqual([...new Set(spans.map((s) => `${s.kind} ${s.attributes['http.response.status_code']}`))], [`${SERVER_KIND} 200`]);
    const paths = (tag: string) => spans.map((s) => s.attributes['url.path'] as string).filter((p) => p.startsWith(`/items/${tag}-`)).sort();
    t.deepEqual(paths('a'), Array.from({ length: 100 }, (_, i) => `/items/a-${i}`).sort());
    t.deepEqual(paths('b'), Array.from({ length: 1000 }, (_, i) => `/items/b-${i}`).sort());
    // Each span's response is its own: the server answers {"id": "<tag>-<i>"}, 9 + len bytes.
    const wrongBody = spans.filter((s) => s.attributes['http.response.body.size'] !== (s.attributes['url.path'] as string).length - '/items/'.length + 10);
    t.deepEqual(wrongBody.map((s) => [s.attributes['url.path'], s.attributes['http.response.body.size']]), []);
  } finally {
    server.child.kill();
  }
});
