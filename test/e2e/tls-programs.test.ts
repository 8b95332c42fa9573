// The HTTPS test programs and certificates work on their own (no eBPF): each
// server answers curl --cacert with the fixed body over TLS, and each client
// gets it from a server; the Go server's benchmark routes answer what the
// Node benchmark target does.

import { spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { startWorkload, type Workload } from '../helpers/agent';
import { startNodeServer } from '../../bench/servers';
import { goHttpsBinary, ITEMS_BODY, NODE_HTTPS, PYTHON_HTTPS_SERVER, testCertificates } from '../helpers/tls';

const PY = '/usr/bin/python3';

async function servers(): Promise<Array<[string, () => Promise<Workload>]>> {
  const c = await testCertificates();
  return [
    ['python', () => startWorkload(PY, [PYTHON_HTTPS_SERVER, c.serverCert, c.serverKey])],
    ['node', () => startWorkload(process.execPath, [NODE_HTTPS, 'server', c.serverCert, c.serverKey])],
    ['go', async () => startWorkload(await goHttpsBinary(), ['server', c.serverCert, c.serverKey])],
  ];
}

function curl(t: ExecutionContext, url: string, caCert: string): { status: string; body: string } {
  const r = spawnSync('curl', ['-sS', '--cacert', caCert, '-w', '\n%{http_code}', url], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const nl = r.stdout.lastIndexOf('\n');
  return { body: r.stdout.slice(0, nl), status: r.stdout.slice(nl + 1) };
}

test('each HTTPS test server answers curl --cacert over TLS, for 127.0.0.1 and localhost', async (t) => {
  const c = await testCertificates();
  for (const [name, start] of await servers()) {
    const server = await start();
    try {
      const port = server.hello['port'] as number;
      t.is(server.hello['pid'], server.pid, name);
      t.deepEqual(curl(t, `https://127.0.0.1:${port}/items`, c.caCert), { status: '200', body: ITEMS_BODY }, name);
      t.deepEqual(curl(t, `https://localhost:${port}/items`, c.caCert), { status: '200', body: ITEMS_BODY }, name);
      t.is(curl(t, `https://127.0.0.1:${port}/other`, c.caCert).status, '404', name);
      // Not plaintext: a plain HTTP request gets no HTTP answer.
      const plain = spawnSync('curl', ['-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/items`], { encoding: 'utf8' });
      t.not(plain.stdout, '200', name);
    } finally {
      server.child.kill();
    }
  }
});

test('the Node and Go HTTPS clients make N requests trusting the CA file', async (t) => {
  const c = await testCertificates();
  const server = await startWorkload(process.execPath, [NODE_HTTPS, 'server', c.serverCert, c.serverKey]);
  try {
    const url = `https://127.0.0.1:${server.hello['port'] as number}/items`;
    for (const [cmd, args] of [
      [process.execPath, [NODE_HTTPS, 'client', url, '3', c.caCert]],
      [await goHttpsBinary(), ['client', url, '3', c.caCert]],
    ] as const) {
      const client = await startWorkload(cmd, [...args]);
      t.is(client.hello['pid'], client.pid);
      client.go();
      t.deepEqual(await client.result(), { statuses: [200, 200, 200], bodies: [ITEMS_BODY, ITEMS_BODY, ITEMS_BODY] }, cmd);
    }
  } finally {
    server.child.kill();
  }
});

test("the Go HTTPS server answers the benchmarks' /small and /large with the Node target's bytes", async (t) => {
  const c = await testCertificates();
  const go = await startWorkload(await goHttpsBinary(), ['server', c.serverCert, c.serverKey]);
  const node = await startNodeServer();
  try {
    const port = go.hello['port'] as number;
    const small = curl(t, `https://127.0.0.1:${port}/small`, c.caCert);
    t.deepEqual(small, { status: '200', body: '{"ok":true,"service":"bench","items":[1,2,3],"note":"a small response of about 100 bytes"}' });
    t.deepEqual(curl(t, `https://127.0.0.1:${port}/large`, c.caCert), { status: '200', body: 'x'.repeat(16 * 1024) });
    t.deepEqual(curl(t, `http://127.0.0.1:${node.port}/small`, c.caCert), small);
    t.is(curl(t, `http://127.0.0.1:${node.port}/large`, c.caCert).body, 'x'.repeat(16 * 1024));
  } finally {
    go.child.kill();
    await node.stop();
  }
});
