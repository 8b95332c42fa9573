// A TLS library the agent names but does not probe, end to end with real
// eBPF: gnutls-serv (GnuTLS's test server, from gnutls-bin) answering curl
// over HTTPS, traced by `ebpf-otel run --pid`, exporting to a real OTLP
// receiver. Its ciphertext must never become a span: each connection is
// detected as TLS from its record header, handed to no parser and counted as
// unprobed. `ebpf-otel doctor --pid` says why: GnuTLS is not probed.
//
// gnutls-serv has no option to bind one address (it listens on 0.0.0.0 and
// ::), so it runs in a network namespace of its own whose only interface is
// its loopback, and curl joins that namespace: the server is reachable from
// that loopback only. The agent does not mind: its programs are global and
// it follows the pid, whatever the pid's network namespace.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { BIN, sleep, startAgent } from '../helpers/agent';
import { ITEMS_BODY, testCertificates } from '../helpers/tls';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;

const otlp = useOtlpReceiver(anyTest);

interface GnutlsServer {
  readonly pid: number;
  readonly port: number;
  /** Prefix that runs a command in the server's network namespace, the only place its port can be reached. */
  readonly enter: readonly string[];
}

/**
 * gnutls-serv --http on an ephemeral port of its own network namespace's
 * loopback, answering ITEMS_BODY to every request. It prints "port 0" for an
 * ephemeral port, so the port (and readiness) come from its listening IPv4
 * socket in /proc.
 */
async function startGnutlsServer(t: ExecutionContext): Promise<GnutlsServer> {
  const certs = await testCertificates();
  const body = path.join(path.dirname(certs.serverCert), 'gnutls-items.json');
  fs.writeFileSync(body, ITEMS_BODY);
  const args = ['--http', '--httpdata', body, '-p', '0', '--x509certfile', certs.serverCert, '--x509keyfile', certs.serverKey, '--disable-client-cert'];
  // unshare (no --fork) and sh both exec: the child's pid is gnutls-serv's,
  // and the namespace ends with it. A new namespace's loopback is down.
  const inNamespace = ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', 'gnutls-serv', ...args];
  // It reports every connection on stdout, read by nobody: ignored, so it never blocks on a full pipe.
  const child = spawn('unshare', inNamespace, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `unshare --net gnutls-serv exited (${code ?? signal}): ${stderr}`));
  child.once('error', (err) => (exited = `unshare: ${err.message}`));
  t.teardown(() => child.kill());
  const deadline = Date.now() + 10000;
  for (;;) {
    if (exited !== undefined) throw new Error(exited);
    const port = child.pid !== undefined ? listeningPort(child.pid) : undefined;
    if (port !== undefined) {
      const pid = child.pid!;
      if (netnsInode(pid) === netnsInode(process.pid)) throw new Error('gnutls-serv runs in the host network namespace');
      return { pid, port, enter: ['nsenter', `--net=/proc/${pid}/ns/net`, '--'] };
    }
    if (Date.now() > deadline) throw new Error(`gnutls-serv not listening within 10 s: ${stderr}`);
    await sleep(50);
  }
}

function netnsInode(pid: number): bigint {
  return fs.statSync(`/proc/${pid}/ns/net`, { bigint: true }).ino;
}

/** The port of the IPv4 TCP socket that `pid` listens on, once it listens (/proc/<pid>/net shows the pid's namespace). */
function listeningPort(pid: number): number | undefined {
  let inodes: Set<string>;
  let table: string;
  try {
    inodes = new Set(
      fs
        .readdirSync(`/proc/${pid}/fd`)
        .map((fd) => /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1])
        .filter((i): i is string => i !== undefined),
    );
    table = fs.readFileSync(`/proc/${pid}/net/tcp`, 'utf8');
  } catch {
    return undefined; // not exec'd yet, or a fd closed meanwhile: next poll
  }
  // "sl local_address rem_address st ... inode": st 0A is LISTEN.
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && inodes.has(f[9]!)) return parseInt(f[1]!.split(':')[1]!, 16);
  }
  return undefined;
}

test('curl -> gnutls-serv (GnuTLS, not probed), `run --pid`: no span, every connection counted as unprobed TLS, no parser sees the ciphertext', async (t) => {
  const certs = await testCertificates();
  const server = await startGnutlsServer(t);
  const requests = 5;
  const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
  // One curl process per request: connections are exactly requests.
  for (let i = 0; i < requests; i++) {
    const r = spawnSync(server.enter[0]!, [...server.enter.slice(1), 'curl', '-sS', '--cacert', certs.caCert, '-w', '\n%{http_code}', `https://127.0.0.1:${server.port}/items`], { encoding: 'utf8' });
    t.is(r.stdout, `${ITEMS_BODY}\n200`, r.stderr);
  }
  await sleep(300);
  const { code, stderr } = await agent.stop();
  t.is(code, 0, stderr);
  t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));

  t.deepEqual(
    otlp.receiver.spans.map((s) => `${s.resource['process.pid'] as number} ${s.name}`),
    [],
    'no span at all from ciphertext',
  );
  // The agent found GnuTLS in the process, and knows it does not probe it.
  t.deepEqual(
    otlp.receiver.latestPoints('ebpf_otel.tls.unprobed_processes').map((p) => `${p.attributes['ebpf_otel.tls.library'] as string} ${p.value ?? '?'}`),
    ['gnutls 1'],
  );
  // Only the server is traced: each connection once, at its end.
  t.is(otlp.counter('ebpf_otel.protocol.unprobed_connections', 'tls'), requests);
  t.is(otlp.counter('ebpf_otel.protocol.records', 'tls'), 0);
  t.is(otlp.counter('ebpf_otel.protocol.records', 'http1'), 0);
  t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0, 'no parser ever saw the ciphertext');
});

test('`doctor --pid` on gnutls-serv: names GnuTLS as its TLS library, not probed', async (t) => {
  const server = await startGnutlsServer(t);
  // The file as the process maps it, which is what doctor names.
  const maps = fs.readFileSync(`/proc/${server.pid}/maps`, 'utf8');
  const libgnutls = [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((f) => /\/libgnutls\.so\.\d/.test(f)))];
  t.is(libgnutls.length, 1, maps);
  const r = spawnSync(BIN, ['doctor', '--pid', String(server.pid), '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { checks: Array<{ name: string; ok: boolean | undefined; detail: string; required: boolean }> };
  t.deepEqual(
    report.checks.filter((c) => c.name.startsWith('tls pid')),
    [
      {
        name: `tls pid ${server.pid}`,
        ok: false,
        detail: `gnutls-serv: gnutls ${libgnutls[0]!}: not probed (GnuTLS is not probed (OpenSSL and Go crypto/tls are))`,
        required: false,
      },
    ],
  );
});
