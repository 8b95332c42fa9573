import test from 'ava';
import type { DataEvent } from '../../src/capture/events';
import { SideStream } from '../../src/correlate/stream';
import type { Chunk } from '../../src/protocols/types';

function ev(pos: number, data: string, size = data.length): DataEvent {
  return {
    type: 'data', tgid: 1, tid: 1, comm: 'x', cgroupId: 1n, fd: 3, connId: 1, tsEnterNs: pos * 10, tsExitNs: pos * 10 + 5,
    pos, netns: 1, size, dir: 'egress', role: 'client', source: 'write', truncated: data.length < size,
    tuple: { family: 'inet', transport: 'tcp', localAddr: '127.0.0.1', localPort: 1, remoteAddr: '127.0.0.1', remotePort: 2 },
    data: Buffer.from(data),
  };
}

function collect() {
  const log: string[] = [];
  const stats = { reordered: 0, gapBytes: 0, overlaps: 0 };
  const s = new SideStream('egress', {
    chunk: (c: Chunk) => log.push(`chunk@${c.pos}:${c.data.toString()} ${c.startNs}-${c.endNs}`),
    gap: (_side, pos, bytes) => log.push(`gap@${pos}+${bytes}`),
  }, stats);
  return { s, log, stats };
}

test('in-order events pass straight through, with egress timing from syscall entry', (t) => {
  const { s, log } = collect();
  s.push(ev(0, 'ab'));
  s.push(ev(2, 'cd'));
  t.deepEqual(log, ['chunk@0:ab 0-5', 'chunk@2:cd 20-25']);
});

test('a truncated capture becomes a chunk then an explicit gap', (t) => {
  const { s, log, stats } = collect();
  s.push(ev(0, 'head', 100));
  s.push(ev(100, 'next'));
  t.deepEqual(log, ['chunk@0:head 0-5', 'gap@4+96', 'chunk@100:next 1000-1005']);
  t.is(stats.gapBytes, 96);
});

test('out-of-order events are held and released in position order', (t) => {
  const { s, log, stats } = collect();
  s.push(ev(0, 'a'));
  s.push(ev(2, 'c'));
  s.push(ev(1, 'b'));
  t.deepEqual(log.map((l) => l.split(' ')[0]), ['chunk@0:a', 'chunk@1:b', 'chunk@2:c']);
  t.is(stats.reordered, 1);
});

test('a missing event becomes a gap once the window fills or on flush', (t) => {
  const { s, log } = collect();
  s.push(ev(0, 'a'));
  s.push(ev(5, 'f'));
  t.deepEqual(log.length, 1);
  s.flushHeld();
  t.deepEqual(log.map((l) => l.split(' ')[0]), ['chunk@0:a', 'gap@1+4', 'chunk@5:f']);
  const w = collect();
  w.s.push(ev(0, 'a'));
  for (let i = 0; i < 9; i++) w.s.push(ev(10 + i, 'x'));
  t.is(w.log[1], 'gap@1+9', 'window of 8 exceeded: the gap is declared');
});

test('duplicates and overlaps are dropped and counted', (t) => {
  const { s, log, stats } = collect();
  s.push(ev(0, 'ab'));
  s.push(ev(0, 'ab'));
  t.is(log.length, 1);
  t.is(stats.overlaps, 1);
});
