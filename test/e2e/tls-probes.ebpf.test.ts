// TLS plaintext through the OpenSSL uprobes, end to end with real eBPF:
// curl -> Python http.server in ssl (libssl.so.3 on both ends: the tie by
// the socket syscall nested in SSL_read/SSL_write) and a Node https client
// -> a Node https server (OpenSSL inside the node binary, memory BIOs: the
// tie at the first TLS write), traced by `ebpf-otel run`, exporting to a
// real OTLP receiver. They give the spans plain HTTP gives, with url.scheme
// https, and the Node client's CLIENT span is the parent of the server's
// SERVER span as over plain HTTP.

import { spawnSync } from 'node:child_process';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent, startWorkload } from '../helpers/agent';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';
import { assertItemsCalls, traceItemsCalls, assertItemsServerSpan } from '../helpers/https-spans';
import { ITEMS_BODY, NODE_HTTPS, PYTHON_HTTPS_SERVER, testCertificates } from '../helpers/tls';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';

const otlp = useOtlpReceiver(anyTest);

function curlHttps(t: ExecutionContext, url: string, caCert: string): void {
  const r = spawnSync('curl', ['-sS', '--cacert', caCert, '-w', '\n%{http_code}', url], { encoding: 'utf8' });
  t.is(r.stdout, `${ITEMS_BODY}\n200`, r.stderr);
}

async function pythonHttpsServerHitByCurl(t: ExecutionContext, agentArgs: (pid: number) => string[], agentFirst: boolean): Promise<void> {
  const certs = await testCertificates();
  const requests = 3;
  let agent = agentFirst ? await startAgent(agentArgs(0), { env: otlp.env() }) : undefined;
  const server = await startWorkload(PY, [PYTHON_HTTPS_SERVER, certs.serverCert, certs.serverKey]);
  const port = server.hello['port'] as number;
  try {
    agent ??= await startAgent(agentArgs(server.pid), { env: otlp.env() });
    // A process started after the agent: Python maps libssl at `import ssl`
    // (a dlopen after exec), found by the rescan of processes that exec'd, at
    // the agent's next tick; the hello comes after the import, so a tick and
    // a rescan period are enough.
    if (agentFirst) await sleep(2500);
    for (let i = 0; i < requests; i++) curlHttps(t, `https://127.0.0.1:${port}/items`, certs.caCert);
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));
    const spans = otlp.spansOf(server.pid);
    t.is(spans.length, requests, 'exactly one SERVER span per request');
    spans.forEach((s, i) => assertItemsServerSpan(t, s, port, `request ${i}`));
    t.is(otlp.counter('ebpf_otel.protocol.unprobed_connections', 'tls'), 0, 'probed: never claimed as ciphertext');
    t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0);
  } finally {
    server.child.kill();
  }
}

test('curl -> Python http.server in ssl, `run --pid`: one SERVER span per request, url.scheme https', async (t) => {
  await pythonHttpsServerHitByCurl(t, (pid) => ['run', '--pid', String(pid)], false);
});

test('a Python HTTPS server started after the agent (`run --exe python3`): its libssl is probed too', async (t) => {
  await pythonHttpsServerHitByCurl(t, () => ['run', '--exe', 'python3'], true);
});

test('Node https client -> Node https server (OpenSSL in the node binary): SERVER and CLIENT spans, the CLIENT span the parent of the SERVER span', async (t) => {
  const certs = await testCertificates();
  const requests = 4;
  const server = await startWorkload(process.execPath, [NODE_HTTPS, 'server', certs.serverCert, certs.serverKey]);
  const port = server.hello['port'] as number;
  const client = await startWorkload(process.execPath, [NODE_HTTPS, 'client', `https://127.0.0.1:${port}/items`, String(requests), certs.caCert]);
  try {
    await traceItemsCalls(t, otlp, server, client, requests);
    assertItemsCalls(t, otlp, server.pid, client.pid, requests, port);
  } finally {
    server.child.kill();
    client.child.kill();
  }
});
