// Go crypto/tls through its uprobes, end to end with real eBPF: a Go HTTPS
// client -> a Go HTTPS server (no OpenSSL anywhere: the functions are found
// in each binary's pclntab, the returns probed at their RET instructions,
// the socket read from the Conn), traced by `ebpf-otel run --pid`,
// exporting to a real OTLP receiver. They give the spans plain HTTP gives,
// with url.scheme https, the CLIENT span the parent of the SERVER span; the
// handshake's ciphertext never reaches a parser nor counts as unprobed TLS.

import { spawnSync } from 'node:child_process';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { BIN, startWorkload } from '../helpers/agent';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';
import { assertItemsCalls, traceItemsCalls } from '../helpers/https-spans';
import { classifyElf } from '../../src/capture/tls/library';
import { goHttpsBinary, testCertificates, type GoBuild } from '../helpers/tls';

const test = ebpfTest.serial;

const otlp = useOtlpReceiver(anyTest);

async function goClientToGoServer(t: ExecutionContext, build: GoBuild): Promise<void> {
  const certs = await testCertificates();
  const go = await goHttpsBinary(build);
  const server = await startWorkload(go, ['server', certs.serverCert, certs.serverKey]);
  const port = server.hello['port'] as number;
  const requests = 5;
  // One connection per request (the client disables keep-alive): each one's handshake is marked before its records.
  const client = await startWorkload(go, ['client', `https://127.0.0.1:${port}/items`, String(requests), certs.caCert]);
  try {
    await traceItemsCalls(t, otlp, server, client, requests);
    // Each connection at both ends, tied before its first plaintext: never claimed as unprobed TLS.
    assertItemsCalls(t, otlp, server.pid, client.pid, requests, port);
    t.is(otlp.counter('ebpf_otel.tls.ties', { 'ebpf_otel.tie': 'go_fd' }), 2 * requests);
    t.is(otlp.counter('ebpf_otel.tls.go_layout_mismatches'), 0);
    t.is(otlp.counter('ebpf_otel.tls.go_returns_missed'), 0);
    // One file (both processes run the same binary), attached once, its time measured.
    t.is(otlp.counter('ebpf_otel.tls.attaches'), 1);
    const attachTime = otlp.counter('ebpf_otel.tls.attach_time');
    t.true(attachTime > 0 && attachTime < 5, `attach time ${attachTime} s`);
    t.is(otlp.counter('ebpf_otel.tls.late_ciphertext_events'), 0, 'marked at the handshake: no ciphertext shipped before the plaintext');
    t.true(otlp.counter('ebpf_otel.tls.ciphertext_syscalls') > 0, 'the ciphertext was there, muted in the kernel');
    // Gauges at the final export (after the probes were detached): the server (the client has exited), probed as it was.
    t.deepEqual(otlp.receiver.latestPoints('ebpf_otel.tls.processes').map((p) => [p.attributes['ebpf_otel.tls.library'], p.value]), [['go', 1]]);
    t.is(otlp.counter('ebpf_otel.tls.unprobed_processes'), 0);
  } finally {
    server.child.kill();
    client.child.kill();
  }
}

test('Go HTTPS client -> Go HTTPS server (crypto/tls probed): SERVER and CLIENT spans with url.scheme https, the CLIENT span the parent, no ciphertext parsed', async (t) => {
  await goClientToGoServer(t, 'default');
});

test('the same with stripped Go binaries (-ldflags="-s -w"): found through the pclntab alone', async (t) => {
  await goClientToGoServer(t, 'stripped');
});

test('`doctor --pid` on a Go HTTPS server: Go crypto/tls, its version, probed (the kernel took every probe)', async (t) => {
  const certs = await testCertificates();
  const go = await goHttpsBinary('stripped');
  const server = await startWorkload(go, ['server', certs.serverCert, certs.serverKey]);
  try {
    const version = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).stdout.trim().replace(/^go/, '');
    const r = spawnSync(BIN, ['doctor', '--pid', String(server.pid), '--json'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { checks: Array<{ name: string; ok: boolean | undefined; detail: string; required: boolean }> };
    const tls = report.checks.filter((c) => c.name.startsWith('tls pid'));
    t.is(tls.length, 1, JSON.stringify(tls));
    // Every probe of its plan attached: Read and Write entries, each of their returns, the handshake.
    const probes = classifyElf(go, go)!.probes.length;
    t.like(tls[0], { name: `tls pid ${server.pid}`, ok: true, required: false });
    t.regex(tls[0]!.detail, new RegExp(`^https: go ${version.replace(/\./g, '\\.')} \\S+/https: probed \\(${probes} probes attach\\)$`));
  } finally {
    server.child.kill();
  }
});
