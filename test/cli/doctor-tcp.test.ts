import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAPTURE_SYSCALLS, tcpTracepointCheck, TCP_TRACEPOINTS_UNUSED, TCP_TRACEPOINTS_USED } from '../../src/cli/doctor';

test('doctor: the TCP tracepoints the agent uses, the ones it does not, and what to do when one is missing', (t) => {
  const present = new Set(['/t/events/sock/inet_sock_set_state', '/t/events/tcp/tcp_retransmit_skb', '/t/events/tcp/tcp_send_reset', '/t/events/tcp/tcp_receive_reset', '/t/events/tcp/tcp_destroy_sock']);
  const all = tcpTracepointCheck((p) => present.has(p), '/t');
  t.true(all.ok);
  t.is(all.detail, `uses ${TCP_TRACEPOINTS_USED.join(', ')}; also present, unused: tcp/tcp_destroy_sock`);
  present.delete('/t/events/tcp/tcp_receive_reset');
  const missing = tcpTracepointCheck((p) => present.has(p), '/t');
  t.false(missing.ok);
  t.regex(missing.detail, /^missing tcp\/tcp_receive_reset: run with --no-tcp-metrics/);
});

/** `SEC("tracepoint/...")` or `SEC("tp/...")` directly above `int <name>(`: program name -> tracepoint. */
function tracepointPrograms(source: string): Map<string, string> {
  const programs = new Map<string, string>();
  for (const m of source.matchAll(/SEC\("(?:tracepoint|tp)\/([^"]+)"\)\s*\n\s*int\s+(\w+)\s*\(/g)) programs.set(m[2]!, m[1]!);
  return programs;
}

test('doctor: its TCP tracepoints are exactly those of the tcph_* programs in bpf/ (syscall ones under "syscall tracepoints")', (t) => {
  const dir = path.resolve(__dirname, '../../../bpf');
  const sources = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.bpf.h') || f.endsWith('.bpf.c'))
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  const tcph = new Map<string, string>();
  for (const source of sources) for (const [name, tp] of tracepointPrograms(source)) if (name.startsWith('tcph_')) tcph.set(name, tp);
  // Every tcph_* program is one the parser saw (none attached some other way, or declared in a form it misses).
  const defined = sources.flatMap((s) => [...s.matchAll(/^int\s+(tcph_\w+)\s*\(/gm)].map((m) => m[1]!));
  t.true(defined.length > 0);
  t.deepEqual(defined.filter((n) => !tcph.has(n)), [], 'tcph_* programs not under a SEC("tracepoint/...") the test reads');

  const tracepoints = [...new Set(tcph.values())];
  const syscalls = tracepoints.filter((tp) => tp.startsWith('syscalls/'));
  t.deepEqual(
    tracepoints.filter((tp) => !tp.startsWith('syscalls/')).sort(),
    [...TCP_TRACEPOINTS_USED].sort(),
  );
  // sys_enter_X and sys_exit_X come together; doctor checks X under "syscall tracepoints".
  const syscallNames = syscalls.map((tp) => tp.replace(/^syscalls\/sys_(enter|exit)_/, ''));
  t.deepEqual(syscallNames.filter((n) => !CAPTURE_SYSCALLS.includes(n)), []);
  t.deepEqual(TCP_TRACEPOINTS_UNUSED.filter((tp) => tracepoints.includes(tp)), []);
});
