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

/** A side stream whose start position is known (a connection seen from its connect/accept) or not. */
function collectFrom(start: number | undefined) {
  const log: string[] = [];
  const stats = { reordered: 0, gapBytes: 0, overlaps: 0 };
  const s = new SideStream('egress', {
    chunk: (c: Chunk) => log.push(`chunk@${c.pos}:${c.data.toString()}`),
    gap: (_side, pos, bytes) => log.push(`gap@${pos}+${bytes}`),
  }, stats, start);
  return { s, log, stats };
}

test('a first event that overtook an earlier one: held until the earlier one comes when the start is known', (t) => {
  const { s, log, stats } = collectFrom(0);
  s.push(ev(3, 'def'));
  t.deepEqual(log, [], 'nothing before position 0 has come yet');
  t.is(s.bufferedBytes(), 3);
  s.push(ev(0, 'abc'));
  s.push(ev(6, 'g'));
  t.deepEqual(log, ['chunk@0:abc', 'chunk@3:def', 'chunk@6:g']);
  t.deepEqual(stats, { reordered: 1, gapBytes: 0, overlaps: 0 });
  t.is(s.bufferedBytes(), 0);
});

test('a known start whose first bytes never come: a gap from the start once flushed', (t) => {
  const { s, log, stats } = collectFrom(0);
  s.push(ev(5, 'fgh'));
  s.flushHeld();
  t.deepEqual(log, ['gap@0+5', 'chunk@5:fgh']);
  t.deepEqual(stats, { reordered: 1, gapBytes: 5, overlaps: 0 });
});

test('an unknown start (joined mid-connection): the first event to arrive starts the stream; an earlier one after it is an overlap', (t) => {
  const { s, log, stats } = collectFrom(undefined);
  s.push(ev(103, 'def'));
  s.push(ev(100, 'abc'));
  s.push(ev(106, 'g'));
  t.deepEqual(log, ['chunk@103:def', 'chunk@106:g']);
  t.deepEqual(stats, { reordered: 0, gapBytes: 0, overlaps: 1 });
});
