// Smoke test of the BPF cost benchmark (bench/bpf-cost.ts), eBPF: one short
// round. Not a speed test: it checks the attribution (the server's own read
// and writev runs per request, from its exact syscall counts; the TLS
// library calls of the https and go-https arms), that the kernel's run accounting produced
// figures, and that bpf_stats_enabled is back to what it was.

import * as fs from 'node:fs';
import { ebpfTest } from '../helpers/ebpf';
import { formatTable, runBpfCost } from '../../bench/bpf-cost';

ebpfTest.serial('bench bpf cost: one read and one writev per keep-alive request, costed; the stats sysctl is put back', async (t) => {
  t.timeout(120_000);
  const sysctl = () => fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  const before = sysctl();
  const r = await runBpfCost({ seconds: 1, rounds: 1, connections: 2, log: () => {} });
  t.log(formatTable(r.summary));
  t.is(sysctl(), before);
  const s = r.summary[0]!;
  t.is(s.arm, 'http current');
  const p = (name: string) => s.programs.find((x) => x.name === name)!;
  for (const name of ['tp_sys_enter_read', 'tp_sys_exit_read', 'tp_sys_enter_writev', 'tp_sys_exit_writev']) {
    t.true(Math.abs(p(name).runsPerRequest - 1) < 0.2, `${name}: ${p(name).runsPerRequest} runs per request`);
    t.true(p(name).nsPerRun > 0, `${name} costed`);
  }
  t.true(s.nsPerRequest > 0);
  t.is(s.uprobeNsPerRequest, 0);
  t.true(s.unselectedNsPerSyscall > 0);
});

// Node's https server (OpenSSL in the node binary, memory BIOs): per request
// SSL_read twice (the request, then the call that finds no more: WANT_READ),
// SSL_write once, and one socket read and write of ciphertext.
ebpfTest.serial('bench bpf cost, https arm: the OpenSSL probes per request costed beside the socket programs; attach time reported', async (t) => {
  t.timeout(120_000);
  const r = await runBpfCost({ seconds: 1, rounds: 1, connections: 2, targets: ['http', 'https'], log: () => {} });
  t.log(formatTable(r.summary));
  t.deepEqual(r.summary.map((s) => s.arm), ['http current', 'https current']);
  const s = r.summary[1]!;
  const p = (name: string) => s.programs.find((x) => x.name === name)!;
  const perRequest = { uprobe_ssl_read: 2, uretprobe_ssl_read: 2, uprobe_ssl_write: 1, uretprobe_ssl_write: 1, tp_sys_exit_read: 1, tp_sys_exit_write: 1 };
  for (const [name, n] of Object.entries(perRequest)) {
    t.true(Math.abs(p(name).runsPerRequest - n) < 0.2, `${name}: ${p(name).runsPerRequest} runs per request, expected ${n}`);
    t.true(p(name).nsPerRun > 0, `${name} costed`);
  }
  t.true(s.uprobeNsPerRequest > 0 && s.uprobeNsPerRequest < s.nsPerRequest);
  // The node binary, probed once per arm.
  for (const x of r.summary) t.is(x.attach?.files, 1);
  t.true(s.attach!.slowestFileMs > 0);
});

// The Go HTTPS test program (crypto/tls, net/http keep-alive) per request:
// Conn.Read twice (the server's background read that finds the next
// request's first byte, then the rest of it from the TLS record already
// decrypted), Conn.Write once (the response, one record); the handshake
// probes (clientHandshake/serverHandshake) only once per connection, so
// nothing per keep-alive request; one socket write of ciphertext, from whose
// exit the write's plaintext ships.
ebpfTest.serial('bench bpf cost, go-https arm: the Go crypto/tls probes per request, entry and return-instruction ones, costed; attach time reported', async (t) => {
  t.timeout(180_000);
  const r = await runBpfCost({ seconds: 1, rounds: 1, connections: 2, targets: ['go-https'], log: () => {} });
  t.log(formatTable(r.summary));
  const s = r.summary[0]!;
  t.is(s.arm, 'go-https current');
  const p = (name: string) => s.programs.find((x) => x.name === name)!;
  const perRequest = {
    uprobe_go_tls_read: 2,
    uprobe_go_tls_read_ret: 2,
    uprobe_go_tls_write: 1,
    uprobe_go_tls_write_ret: 1,
    uprobe_go_tls_handshake: 0,
    tp_sys_exit_write: 1,
  };
  for (const [name, n] of Object.entries(perRequest)) {
    t.true(Math.abs(p(name).runsPerRequest - n) < 0.2, `${name}: ${p(name).runsPerRequest} runs per request, expected ${n}`);
    if (n > 0) t.true(p(name).nsPerRun > 0, `${name} costed`);
  }
  t.true(s.returnProbeNsPerRequest > 0 && s.returnProbeNsPerRequest < s.uprobeNsPerRequest);
  t.true(s.uprobeNsPerRequest < s.nsPerRequest);
  // The Go binary, probed once.
  t.is(s.attach?.files, 1);
  t.true(s.attach!.slowestFileMs > 0);
});
