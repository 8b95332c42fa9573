// Smoke test of the unknown-traffic benchmark (bench/unknown-traffic.ts),
// eBPF: one short run per arm. Not a speed test: it checks the arms do what
// they say, with exact byte accounting for the muted arm.

import { ebpfTest } from '../helpers/ebpf';
import { formatTable, runArm, summarize } from '../../bench/unknown-traffic';

ebpfTest.serial('bench unknown traffic: the ship arm ships, the mute arm accounts every byte as shipped or muted', async (t) => {
  t.timeout(60_000);
  const ship = await runArm('ship', 1, 16384);
  const mute = await runArm('mute', 1, 16384);
  t.log(formatTable(summarize([ship, mute])));
  t.true(ship.streamBytes > 0 && mute.streamBytes > 0);
  t.true(ship.dataEvents > 0);
  t.is(ship.mutedBytes, 0, 'nobody told the kernel');
  t.is(mute.eventsLost, 0);
  // Both ends of the one connection: every byte went through a syscall on
  // each side, and each syscall either shipped an event or was muted.
  t.is(mute.shippedBytes + mute.mutedBytes, 2 * mute.streamBytes);
  t.true(mute.mutedBytes > 0);
});
