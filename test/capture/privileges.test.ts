import test from 'ava';
import { effectiveCaps, missingCaps } from '../../src/capture/privileges';

test('capabilities from /proc status text', (t) => {
  t.deepEqual(missingCaps(effectiveCaps('CapEff:\t000001ffffffffff\n')), []);
  // CAP_BPF(39) + CAP_PERFMON(38) + CAP_SYS_PTRACE(19)
  const minimal = (1n << 39n) | (1n << 38n) | (1n << 19n);
  t.deepEqual(missingCaps(effectiveCaps(`CapEff:\t${minimal.toString(16).padStart(16, '0')}\n`)), []);
  t.deepEqual(missingCaps(effectiveCaps('CapEff:\t0000000000000000\n')), ['BPF', 'PERFMON', 'SYS_PTRACE']);
  // CAP_SYS_ADMIN covers BPF and PERFMON.
  t.deepEqual(missingCaps(effectiveCaps(`CapEff:\t${(1n << 21n).toString(16).padStart(16, '0')}\n`)), ['SYS_PTRACE']);
});
