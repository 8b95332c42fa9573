import test from 'ava';
import type { SlowSyscallEvent } from '../../src/capture/events';
import { SYSLAT_BUCKETS } from '../../src/capture/layout';
import { bucketOf, type SyscallDelta } from '../../src/capture/syscall-histograms';
import { syscallNumber } from '../../src/capture/syscall-names';
import { UsageError } from '../../src/config/flags';
import { parseSyscallsArgs } from '../../src/cli/syscalls-command';
import { describeFdTarget, formatNs, intervalJson, intervalText, REDRAW, renderInterval, slowSyscallJson, slowSyscallText, summarize, TABLE_NOTE } from '../../src/cli/syscalls-format';

const nr = (name: string) => syscallNumber(name, 'x86_64')!;

function delta(tgid: number, name: string, err: number, durations: number[], maxKnown = true): SyscallDelta {
  const buckets = new Array<number>(SYSLAT_BUCKETS).fill(0);
  for (const d of durations) buckets[bucketOf(d)]!++;
  const max = Math.max(...durations);
  return { tgid, nr: nr(name), err, count: durations.length, sumNs: durations.reduce((a, b) => a + b, 0), maxNs: maxKnown ? max : undefined, maxSinceStartNs: max, buckets };
}

const DELTAS = [
  delta(10, 'read', 0, [900, 900, 900, 2000]),
  delta(10, 'openat', 0, [3000]),
  delta(10, 'openat', 2, [1500, 1500]),
  delta(10, 'clock_nanosleep', 0, [50e6, 51e6]),
  delta(20, 'write', 0, [700], false),
];

test('summarize: per process by total time; successes and failures of a syscall in one row', (t) => {
  const ps = summarize(DELTAS, 'x86_64', (pid) => (pid === 10 ? 'python3' : undefined));
  t.deepEqual(ps.map((p) => [p.pid, p.comm, p.count]), [[10, 'python3', 9], [20, undefined, 1]]);
  const rows = ps[0]!.rows;
  t.deepEqual(rows.map((r) => r.name), ['clock_nanosleep', 'openat', 'read']);
  t.like(rows[1], { count: 3, errors: 2, errnos: [['ENOENT', 2]], totalNs: 6000, maxNs: 3000, maxAtMostNs: 3000 });
  t.like(rows[2], { count: 4, p50UpperNs: 1024, p99UpperNs: 2048 });
  t.like(rows[0], { p50UpperNs: 2 ** 26, maxNs: 51e6 });
  // write's max is not known for the interval: only a bound.
  t.like(ps[1]!.rows[0], { maxNs: undefined, maxAtMostNs: 700 });
});

test('the text view: a header that says what p50/p99 are, one table per process, rows capped', (t) => {
  const lines = intervalText(summarize(DELTAS, 'x86_64', () => 'app'), { at: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)), intervalMs: 1000, top: 2 });
  t.is(lines[0], '2025-01-02T03:04:05.000Z  interval 1.00s  2 processes with syscalls');
  t.is(lines[1], TABLE_NOTE);
  t.regex(TABLE_NOTE, /upper bound of the log2 bucket/);
  t.is(lines[3], 'pid 10 (app)  9 calls  101ms in syscalls');
  t.deepEqual(lines.slice(4, 7), [
    '  SYSCALL          COUNT  ERRORS   P50<=   P99<=     MAX   TOTAL  ERRNO',
    '  clock_nanosleep      2       0  67.1ms  67.1ms  51.0ms   101ms',
    '  openat               3       2  2.05us  4.10us  3.00us  6.00us  ENOENT 2',
  ]);
  t.is(lines[7], '  ... 1 more syscalls');
  t.true(lines.includes('  write        1       0  1.02us  1.02us  <=700ns  700ns'), lines.join('\n'));
});

test('a terminal redraws the interval in place; a pipe gets blocks appended', (t) => {
  t.is(renderInterval(['a', 'b'], true), `${REDRAW}a\nb`);
  t.is(REDRAW, '\x1b[H\x1b[2J');
  t.is(renderInterval(['a', 'b'], false), 'a\nb\n', 'the line writer adds one more newline: a blank line between blocks');
  t.false(renderInterval(['a'], false).includes('\x1b'), 'no escape codes in a pipe');
});

test('the JSON view: one object per interval, every syscall, nulls for what is not known', (t) => {
  const o = intervalJson(summarize(DELTAS, 'x86_64', () => undefined), { at: new Date(0), intervalMs: 1000 }) as {
    type: string;
    time: string;
    bucketUpperBoundsNs: number[];
    processes: { pid: number; comm: null; syscalls: Record<string, unknown>[] }[];
  };
  t.is(o.type, 'interval');
  t.is(o.time, '1970-01-01T00:00:00.000Z');
  t.is(o.bucketUpperBoundsNs.length, SYSLAT_BUCKETS - 1);
  t.is(o.processes[0]!.comm, null);
  t.deepEqual(o.processes[0]!.syscalls[1], {
    name: 'openat',
    count: 3,
    errors: 2,
    errnos: { ENOENT: 2 },
    p50UpperNs: 2048,
    p99UpperNs: 4096,
    maxNs: 3000,
    maxAtMostNs: 3000,
    totalNs: 6000,
    buckets: summarize(DELTAS, 'x86_64', () => undefined)[0]!.rows[1]!.buckets,
  });
  t.like(o.processes[1]!.syscalls[0], { name: 'write', maxNs: null, maxAtMostNs: 700 });
  t.notThrows(() => JSON.parse(JSON.stringify(o)));
});

const SLOW: SlowSyscallEvent = {
  type: 'slow_syscall',
  tgid: 10,
  tid: 11,
  comm: 'python3',
  cgroupId: 1n,
  nr: nr('read'),
  ret: 1,
  err: 0,
  tsEnterNs: 0,
  durationNs: 105_000_000,
  fd: 7,
  target: { kind: 'pseudo', name: 'pipe:[123]', inode: 123 },
};

test('slow calls as lines and JSON', (t) => {
  const wall = 1_700_000_000_000_000_000n;
  t.is(slowSyscallText(SLOW, wall, 'x86_64'), '2023-11-14T22:13:20.000Z  SLOW  pid 10  tid 11  python3  read  105ms  ok  fd 7 pipe:[123]');
  t.is(
    slowSyscallText({ ...SLOW, nr: nr('connect'), err: 111, ret: -111, fd: 3, target: undefined }, wall, 'x86_64'),
    '2023-11-14T22:13:20.000Z  SLOW  pid 10  tid 11  python3  connect  105ms  ECONNREFUSED  fd 3 (closed)',
  );
  t.is(slowSyscallText({ ...SLOW, nr: nr('clock_nanosleep'), fd: undefined, target: undefined }, wall, 'x86_64').endsWith('clock_nanosleep  105ms  ok'), true);
  t.deepEqual(slowSyscallJson(SLOW, wall, 'x86_64'), {
    type: 'slow_syscall',
    time: wall.toString(),
    pid: 10,
    tid: 11,
    comm: 'python3',
    syscall: 'read',
    durationNs: 105_000_000,
    ret: 1,
    errno: null,
    fd: 7,
    target: { kind: 'pseudo', name: 'pipe:[123]', inode: 123, description: 'pipe:[123]' },
  });
});

test('fd targets as /proc would name them; sockets by their tuple', (t) => {
  t.is(describeFdTarget({ kind: 'file', path: '/var/log/x', truncated: false, deleted: true }), '/var/log/x (deleted)');
  t.is(describeFdTarget({ kind: 'file', path: '/b/c', truncated: true, deleted: false }), '.../b/c');
  t.is(
    describeFdTarget({ kind: 'socket', family: 10, inode: 1, netns: 1, tuple: { family: 'inet6', transport: 'tcp', localAddr: '::1', localPort: 5, remoteAddr: '::1', remotePort: 6 } }),
    'tcp [::1]:5 -> [::1]:6',
  );
  t.is(describeFdTarget({ kind: 'socket', family: 1, inode: 9, netns: 0, tuple: undefined }), 'socket:[9] (family 1)');
});

test('durations print in the largest unit below 1000', (t) => {
  t.deepEqual([850, 1024, 12_345, 4_560_000, 1_230_000_000, 68_719_476_736].map(formatNs), ['850ns', '1.02us', '12.3us', '4.56ms', '1.23s', '68.7s']);
});

test('syscalls flags: selectors, interval, slow, json; the syscalls group only', (t) => {
  const o = parseSyscallsArgs(['--pid', '42', '--interval', '500ms', '--slow', '40ms', '--slow-rate', '10', '--json', '--top', '5']);
  if (o === 'help') return t.fail();
  t.deepEqual(o.capture, {
    selectors: [{ kind: 'pid', pid: 42 }],
    groups: { sockets: false, syscalls: true, tcp: false, tls: false, links: false },
    syscalls: { slowNs: 40e6, slowPerSecond: 10 },
  });
  t.like(o, { intervalMs: 500, json: true, top: 5, duration: undefined });
  const d = parseSyscallsArgs(['--exe', 'nginx']);
  if (d === 'help') return t.fail();
  t.like(d, { intervalMs: 1000, json: false, top: 15 });
  t.deepEqual(d.capture.syscalls, { slowNs: 0 });
  t.throws(() => parseSyscallsArgs([]), { instanceOf: UsageError, message: /needs a selector/ });
  t.throws(() => parseSyscallsArgs(['--all', '--interval', '10ms']), { instanceOf: UsageError, message: /at least 100ms/ });
  t.is(parseSyscallsArgs(['--help']), 'help');
});
