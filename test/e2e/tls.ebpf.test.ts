// TLS the agent cannot probe, end to end with real eBPF: a Go HTTPS server
// and client (crypto/tls: not OpenSSL, no probes in this step) traced by
// `ebpf-otel run --pid`, exporting to a real OTLP receiver. Their ciphertext
// must never become a span; each connection is detected as TLS from its
// record header, handed to nobody (muted in the kernel while it lasts) and
// counted as unprobed.

import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent, startWorkload } from '../helpers/agent';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { goHttpsBinary, ITEMS_BODY, testCertificates } from '../helpers/tls';

const test = ebpfTest.serial;

let receiver: OtlpReceiver;
anyTest.before(async () => {
  receiver = await OtlpReceiver.start();
});
anyTest.after.always(async () => {
  await receiver?.close();
});
anyTest.beforeEach(() => receiver.reset());

function otlpEnv(): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_METRIC_EXPORT_INTERVAL: '60000' };
}

/** The agent's own counter summed over its series (latest export), restricted to the TLS protocol when it is a protocol counter. */
function counter(name: string, protocol?: string): number {
  return receiver
    .latestPoints(name, (p) => protocol === undefined || p.attributes['ebpf_otel.protocol'] === protocol)
    .reduce((a, p) => a + (p.value ?? 0), 0);
}

test('Go HTTPS server and client (crypto/tls, not probed): no span from the ciphertext, every connection of each counted as unprobed TLS', async (t) => {
  const certs = await testCertificates();
  const go = await goHttpsBinary();
  const server = await startWorkload(go, ['server', certs.serverCert, certs.serverKey]);
  const url = `https://127.0.0.1:${server.hello['port'] as number}/items`;
  const connections = 5;
  // One connection per request (the client disables keep-alive): connections are exactly requests.
  const client = await startWorkload(go, ['client', url, String(connections), certs.caCert]);
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid), '--pid', String(client.pid)], { env: otlpEnv() });
    client.go();
    const done = await client.result();
    t.deepEqual(done, { statuses: Array(connections).fill(200), bodies: Array(connections).fill(ITEMS_BODY) });
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));

    t.deepEqual(
      receiver.spans.map((s) => `${s.resource['process.pid'] as number} ${s.name}`),
      [],
      'no span at all from ciphertext',
    );
    // Each connection twice: the server's end and the client's end.
    t.is(counter('ebpf_otel.protocol.unprobed_connections', 'tls'), 2 * connections);
    t.is(counter('ebpf_otel.protocol.records', 'tls'), 0);
    t.is(counter('ebpf_otel.protocol.records', 'http1'), 0);
    t.is(counter('ebpf_otel.protocol.parse_errors'), 0, 'no parser ever saw the ciphertext');
    // Not asserted exactly: a connection that closed in the batch that claimed it needs no mute.
    t.true(counter('ebpf_otel.connection.muted') <= 2 * connections);
  } finally {
    server.child.kill();
    client.child.kill();
  }
});
