// Smoke test of the unknown-traffic benchmark (bench/unknown-traffic.ts),
// eBPF: one short run per arm. Not a speed test: it checks the arms do what
// they say, with exact byte accounting for the muted arm.

import { ebpfTest } from '../helpers/ebpf';
import { formatTable, runArm, summarize } from '../../bench/unknown-traffic';

ebpfTest.serial('bench unknown traffic: the ship arm ships, the mute arm accounts every byte as shipped or muted', async (t) => {
  t.timeout(60_000);
  // Short: the ship arm saturates the CPUs other test files share.
  const ship = await runArm('ship', 0.5, 16384);
  const mute = await runArm('mute', 0.5, 16384);
  t.log(formatTable(summarize([ship, mute])));
  t.true(ship.streamBytes > 0 && mute.streamBytes > 0);
  t.true(ship.dataEvents > 0);
  t.is(ship.mutedBytes, 0, 'nobody told the kernel');
  t.true(mute.mutedBytes > 0);
  // Both ends of the one connection: every byte went through a syscall on
  // each side, and each syscall either shipped an event or was muted. Events
  // lost before the mute landed (a loaded machine lets the ring fill) make
  // the shipped side short; never long.
  const accounted = mute.shippedBytes + mute.mutedBytes;
  if (mute.eventsLost === 0) t.is(accounted, 2 * mute.streamBytes);
  else t.true(accounted < 2 * mute.streamBytes, `${mute.eventsLost} events lost`);
});
