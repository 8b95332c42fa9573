// The HTTP/2 frame reader on real captures (test/fixtures/http2/, recorded by
// record-traffic.mjs) fed whole, as recorded, at every split point and byte
// by byte, against an independent whole-buffer parse and nghttp's own frame
// log; then hand-built frames for what captures rarely hold (padding,
// CONTINUATION, unknown types, the errors a peer rejects, gaps, the resync
// rule).

import fs from 'node:fs';
import test from 'ava';
import { Http2FrameReader, type Http2ReaderOptions } from '../../../src/protocols/http2/frames';
import { HTTP2_CLIENT_PREFACE } from '../../../src/protocols/http2/wire';
import type { Side } from '../../../src/protocols/types';
import { FIXTURES, FrameLog, TYPE_NAMES, frame, loadCapture, nghttpFrames, readCut, referenceLines } from './frame-log';

const CASES = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(`${FIXTURES}/${d}/events.jsonl`)).sort();
const startOf = (side: Side): Http2ReaderOptions => ({ start: side === 'ingress' ? 'client-preface' : 'server-preface' });
const isFrameLine = (l: string): boolean => TYPE_NAMES.some((t) => l.startsWith(`${t} `));

test('the recorded cases are all there', (t) => {
  t.deepEqual(CASES, ['curl-post', 'curl-prior-knowledge', 'nghttp-get', 'nghttp-post', 'node-client', 'node-client-big-headers', 'node-client-post']);
});

for (const name of CASES) {
  for (const side of ['ingress', 'egress'] as const) {
    test(`${name} ${side}: whole, as recorded, at every split point and byte by byte`, (t) => {
      const c = loadCapture(name);
      const bytes = c.bytes[side];
      const expected = referenceLines(bytes, side === 'ingress');
      const want = expected.join('\n');
      t.deepEqual(readCut(bytes, [], startOf(side)).lines, expected);
      t.deepEqual(readCut(bytes, c.cuts[side], startOf(side)).lines, expected);
      const everyByte = Array.from({ length: bytes.length - 1 }, (_, k) => k + 1);
      t.deepEqual(readCut(bytes, everyByte, startOf(side)).lines, expected);
      let bad = 0;
      for (let k = 1; k < bytes.length; k++) {
        if (readCut(bytes, [k], startOf(side)).lines.join('\n') !== want) bad++;
      }
      t.is(bad, 0);
      const r = readCut(bytes, [], startOf(side)).reader;
      t.is(r.failure, undefined);
      t.is(r.bufferedBytes(), 0);
      t.is(r.position, bytes.length);
    });
  }
}

/** Frames the server sent that nghttp did not log, by case: it closes once it has its responses, Node's GOAWAYs come after. */
const UNLOGGED: Record<string, string[]> = {
  'nghttp-get': ['GOAWAY flags=0x00 stream=0 length=8', 'GOAWAY flags=0x00 stream=0 length=8'],
  'nghttp-post': ['GOAWAY flags=0x00 stream=0 length=8', 'GOAWAY flags=0x00 stream=0 length=8'],
};

test('nghttp cases: the frames nghttp says it sent and received, in its order', (t) => {
  for (const name of CASES.filter((n) => n.startsWith('nghttp'))) {
    const c = loadCapture(name);
    const oracle = nghttpFrames(c.nghttpLog!);
    const ours = (side: Side): string[] => readCut(c.bytes[side], [], startOf(side)).lines.filter(isFrameLine);
    t.deepEqual(ours('ingress'), oracle.ingress, name);
    // nghttp stops logging once it has closed: what the server sent after that is not in its log.
    const egress = ours('egress');
    t.deepEqual(egress.slice(0, oracle.egress.length), oracle.egress, name);
    t.deepEqual(egress.slice(oracle.egress.length), UNLOGGED[name], name);
  }
});

test('what the recorded cases hold, exactly', (t) => {
  const lines = (name: string, side: Side): string[] => readCut(loadCapture(name).bytes[side], [], startOf(side)).lines;
  const count = (ls: string[], prefix: string): number => ls.filter((l) => l.startsWith(prefix)).length;
  // nghttp: PRIORITY frames for its dependency tree, HEADERS with the PRIORITY flag (its fields stripped from the block).
  const ng = lines('nghttp-get', 'ingress');
  t.is(count(ng, 'PRIORITY '), 5);
  t.is(ng.filter((l) => l.startsWith('HEADERS ')).join('|'), 'HEADERS flags=0x25 stream=13 length=39|HEADERS flags=0x25 stream=15 length=19');
  t.true(ng.includes('priority stream=9 dep=7 exclusive=false weight=1'));
  t.true(ng.includes('headers stream=15 end=true block=82048662932106aa6f86c0bf90be'));
  // curl: its SETTINGS and window, a 40000-byte body in three DATA frames.
  const cu = lines('curl-prior-knowledge', 'ingress');
  t.true(cu.includes('settings ack=false [3=100,4=33554432,2=0]'));
  t.true(cu.includes('window stream=0 increment=33488897'));
  const body = lines('curl-prior-knowledge', 'egress').filter((l) => l.startsWith('data '));
  t.deepEqual(body, ['data stream=1 at=79 bytes=16384 end=false', 'data stream=1 at=16472 bytes=16384 end=false', 'data stream=1 at=32865 bytes=7232 end=true']);
  // Node client: a gRPC-shaped call (message, then trailers), and a stream the server reset with CANCEL.
  const nc = lines('node-client', 'egress');
  t.true(nc.includes('rst stream=7 code=8'));
  t.true(nc.includes('data stream=1 at=16560 bytes=8 end=false'));
  t.true(nc.includes('HEADERS flags=0x05 stream=1 length=26'));
  t.true(lines('node-client', 'ingress').includes('data stream=1 at=147 bytes=7 end=true'));
  // Node's client splits a 30000-character header over HEADERS and CONTINUATION: one block of both fragments.
  const big = lines('node-client-big-headers', 'ingress');
  t.deepEqual(big.filter(isFrameLine).slice(1, 3), ['HEADERS flags=0x01 stream=1 length=16384', 'CONTINUATION flags=0x04 stream=1 length=5020']);
  const block = big.filter((l) => l.startsWith('headers '));
  t.is(block.length, 1);
  t.is(block[0]!.length, 'headers stream=1 end=true block='.length + 2 * (16384 + 5020));
});

// -- hand-built frames --

const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WINDOW: 8, CONT: 9 };
const SETTINGS0 = frame(T.SETTINGS, 0, 0, []);

/** Lines for `bytes` read whole and at every split point, which must agree. */
function read(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, bytes: Buffer, options: Http2ReaderOptions = { start: 'frame' }): string[] {
  const whole = readCut(bytes, [], options).lines;
  for (let k = 1; k < bytes.length; k++) t.deepEqual(readCut(bytes, [k], options).lines, whole, `split at ${k}`);
  return whole;
}

test('padded DATA and padded HEADERS with PRIORITY: padding, pad length and priority fields stripped', (t) => {
  const data = frame(T.DATA, 0x08 | 0x01, 1, [3, 0x61, 0x62, 0, 0, 0]);
  const headers = frame(T.HEADERS, 0x08 | 0x20 | 0x04, 3, [2, 0x80, 0, 0, 1, 15, 0x82, 0x84, 0, 0]);
  t.deepEqual(read(t, Buffer.concat([data, headers])), [
    'DATA flags=0x09 stream=1 length=6',
    'data stream=1 at=10 bytes=2 end=true',
    'HEADERS flags=0x2c stream=3 length=10',
    'headers stream=3 end=false block=8284',
  ]);
});

test('padding that fills the payload exactly is valid; one byte more is a connection error', (t) => {
  t.deepEqual(read(t, frame(T.DATA, 0x08, 1, [2, 0, 0])), ['DATA flags=0x08 stream=1 length=3', 'data stream=1 bytes=0 end=false']);
  t.deepEqual(read(t, Buffer.concat([SETTINGS0, frame(T.DATA, 0x08, 1, [3, 0, 0])])), [
    'SETTINGS flags=0x00 stream=0 length=0', 'settings ack=false []', 'DATA flags=0x08 stream=1 length=3', 'failure bad-padding at=9',
  ]);
  // HEADERS with PRIORITY: the 5 priority bytes count against the padding.
  t.deepEqual(read(t, frame(T.HEADERS, 0x2c, 1, [1, 0, 0, 0, 0, 15])), ['HEADERS flags=0x2c stream=1 length=6', 'failure bad-padding at=0']);
  t.deepEqual(read(t, frame(T.DATA, 0x08, 1, [])), ['failure frame-size at=0']);
});

test('CONTINUATION: one block from HEADERS and its CONTINUATIONs, END_STREAM from the HEADERS', (t) => {
  const bytes = Buffer.concat([
    frame(T.HEADERS, 0x01, 5, [0x82, 0x84]),
    frame(T.CONT, 0, 5, [0x86]),
    frame(T.CONT, 0x04, 5, [0x41, 0x01, 0x61]),
    frame(T.DATA, 0, 5, [1]),
  ]);
  t.deepEqual(read(t, bytes), [
    'HEADERS flags=0x01 stream=5 length=2',
    'CONTINUATION flags=0x00 stream=5 length=1',
    'CONTINUATION flags=0x04 stream=5 length=3',
    'headers stream=5 end=true block=828486410161',
    'DATA flags=0x00 stream=5 length=1',
    'data stream=5 at=42 bytes=1 end=false',
  ]);
});

test('PUSH_PROMISE with CONTINUATION: the promised stream and the whole block', (t) => {
  const bytes = Buffer.concat([frame(T.PUSH, 0x08, 1, [1, 0, 0, 0, 2, 0x82, 0]), frame(T.CONT, 0x04, 1, [0x87])]);
  t.deepEqual(read(t, bytes), [
    'PUSH_PROMISE flags=0x08 stream=1 length=7', 'CONTINUATION flags=0x04 stream=1 length=1', 'push stream=1 promised=2 block=8287',
  ]);
});

test('an open header block takes only its CONTINUATION: another frame, another stream, or none open is a connection error', (t) => {
  const open = frame(T.HEADERS, 0, 1, [0x82]);
  t.deepEqual(read(t, Buffer.concat([open, frame(T.DATA, 0, 1, [1])])), ['HEADERS flags=0x00 stream=1 length=1', 'failure continuation-expected at=10']);
  t.deepEqual(read(t, Buffer.concat([open, frame(T.CONT, 4, 3, [0x84])])), ['HEADERS flags=0x00 stream=1 length=1', 'failure continuation-expected at=10']);
  t.deepEqual(read(t, frame(T.CONT, 4, 1, [0x84])), ['failure unexpected-continuation at=0']);
});

test('PRIORITY, RST_STREAM, PING, GOAWAY with debug data, WINDOW_UPDATE', (t) => {
  const bytes = Buffer.concat([
    frame(T.PRIORITY, 0, 3, [0x80, 0, 0, 1, 255]),
    frame(T.RST, 0, 3, [0, 0, 0, 2]),
    frame(T.PING, 1, 0, [1, 2, 3, 4, 5, 6, 7, 8]),
    frame(T.GOAWAY, 0, 0, [0x80, 0, 0, 7, 0, 0, 0, 0xb, 0x62, 0x79, 0x65]),
    frame(T.WINDOW, 0, 3, [0x80, 0, 0x10, 0]),
  ]);
  t.deepEqual(read(t, bytes).filter((l) => !isFrameLine(l)), [
    'priority stream=3 dep=1 exclusive=true weight=256',
    'rst stream=3 code=2',
    'ping ack=true 0102030405060708',
    'goaway last=7 code=11 debug=3',
    'window stream=3 increment=4096',
  ]);
});

test('fixed-length frames of another length and stream ids where forbidden are connection errors', (t) => {
  t.deepEqual(read(t, frame(T.PRIORITY, 0, 3, [0, 0, 0, 1])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.RST, 0, 3, [0, 0, 0, 0, 0])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.PING, 0, 0, [1])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.GOAWAY, 0, 0, [0, 0, 0, 1])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 0, [0, 1, 0, 0])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 1, 0, [0, 1, 0, 0, 0, 0])), ['failure frame-size at=0']);
  t.deepEqual(read(t, frame(T.DATA, 0, 0, [1])), ['failure stream-id at=0']);
  t.deepEqual(read(t, frame(T.HEADERS, 4, 0, [0x82])), ['failure stream-id at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 1, [])), ['failure stream-id at=0']);
  t.deepEqual(read(t, frame(T.PING, 0, 1, [1, 2, 3, 4, 5, 6, 7, 8])), ['failure stream-id at=0']);
  // The reserved bit is ignored on receipt (§4.1).
  t.deepEqual(read(t, frame(T.DATA, 0, 0x80000001, [1])), ['DATA flags=0x00 stream=1 length=1', 'data stream=1 at=9 bytes=1 end=false']);
});

test('SETTINGS values out of range are a connection error; unknown identifiers pass', (t) => {
  const s = (id: number, v: number): number[] => [id >> 8, id & 0xff, v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 0, [...s(1, 4096), ...s(5, 32768), ...s(0xfa, 7)])), [
    'SETTINGS flags=0x00 stream=0 length=18', 'settings ack=false [1=4096,5=32768,250=7]',
  ]);
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 0, s(2, 2))), ['SETTINGS flags=0x00 stream=0 length=6', 'failure bad-setting at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 0, s(4, 0x80000000))), ['SETTINGS flags=0x00 stream=0 length=6', 'failure bad-setting at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 0, 0, s(5, 16383))), ['SETTINGS flags=0x00 stream=0 length=6', 'failure bad-setting at=0']);
});

test('an unknown frame type is skipped (§5.5), the next frame read', (t) => {
  t.deepEqual(read(t, Buffer.concat([frame(0xfa, 0xff, 9, [1, 2, 3, 4]), frame(T.PING, 0, 0, [0, 0, 0, 0, 0, 0, 0, 9])])), [
    'type_0xfa flags=0xff stream=9 length=4', 'PING flags=0x00 stream=0 length=8', 'ping ack=false 0000000000000009',
  ]);
});

test('frame size: 16384 from a preface until the other side allows more; mid-stream the 2^24-1 limit', (t) => {
  const big = frame(T.DATA, 0, 1, Buffer.alloc(16385));
  const fromStart = Buffer.concat([SETTINGS0, big]);
  t.deepEqual(readCut(fromStart, [], { start: 'server-preface' }).lines, ['SETTINGS flags=0x00 stream=0 length=0', 'settings ack=false []', 'failure frame-size at=9']);
  const log = new FrameLog();
  const r = new Http2FrameReader(log, { start: 'server-preface' });
  r.allowFrameSize(16385);
  t.true(r.push(fromStart));
  t.deepEqual(log.lines.slice(2), ['DATA flags=0x00 stream=1 length=16385', 'data stream=1 bytes=16385 end=false']);
  t.deepEqual(readCut(big, [], { start: 'frame' }).lines, ['DATA flags=0x00 stream=1 length=16385', 'data stream=1 at=9 bytes=16385 end=false']);
  t.deepEqual(readCut(big, [], { start: 'frame', maxFrameSize: 100 }).lines, ['failure frame-size at=0']);
});

test('prefaces: the client preface then SETTINGS; anything else is refused', (t) => {
  const ping = frame(T.PING, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]);
  t.deepEqual(read(t, Buffer.concat([HTTP2_CLIENT_PREFACE, SETTINGS0]), { start: 'client-preface' }), ['preface', 'SETTINGS flags=0x00 stream=0 length=0', 'settings ack=false []']);
  t.deepEqual(read(t, Buffer.concat([HTTP2_CLIENT_PREFACE, ping]), { start: 'client-preface' }), ['preface', 'failure settings-expected at=24']);
  t.deepEqual(read(t, Buffer.from('PRI * HTTP/1.1\r\n\r\n'), { start: 'client-preface' }), ['failure bad-preface at=0']);
  t.deepEqual(read(t, frame(T.SETTINGS, 1, 0, []), { start: 'server-preface' }), ['failure settings-expected at=0']);
  t.deepEqual(read(t, Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), { start: 'server-preface' }), ['failure frame-size at=0']);
});

test('a header block over the bound is refused, whichever frames it spans; the bound is what is buffered', (t) => {
  const opts: Http2ReaderOptions = { start: 'frame', maxHeaderBlockBytes: 8 };
  t.deepEqual(read(t, frame(T.HEADERS, 4, 1, Buffer.alloc(8, 0x82)), opts), ['HEADERS flags=0x04 stream=1 length=8', `headers stream=1 end=false block=${'82'.repeat(8)}`]);
  const spanning = Buffer.concat([frame(T.HEADERS, 0, 1, Buffer.alloc(5, 0x82)), frame(T.CONT, 4, 1, Buffer.alloc(4, 0x82))]);
  t.deepEqual(read(t, spanning, opts), ['HEADERS flags=0x00 stream=1 length=5', 'CONTINUATION flags=0x04 stream=1 length=4', 'failure header-block-too-large at=14']);
  const log = new FrameLog();
  const r = new Http2FrameReader(log, opts);
  r.push(spanning.subarray(0, 14 + 9 + 2));
  // 5 bytes from the HEADERS, 2 from the CONTINUATION so far.
  t.is(r.bufferedBytes(), 7);
});

test('a gap inside DATA is skipped exactly; anywhere else the direction is given up', (t) => {
  const bytes = Buffer.concat([frame(T.DATA, 0x08, 1, [2, 1, 2, 3, 4, 0, 0]), frame(T.DATA, 1, 1, [5])]);
  const gapAt = (at: number, n: number): { lines: string[]; r: Http2FrameReader } => {
    const log = new FrameLog();
    const r = new Http2FrameReader(log, { start: 'frame' });
    r.push(bytes.subarray(0, at));
    r.gap(n);
    r.push(bytes.subarray(at + n));
    if (r.failure !== undefined) log.lines.push(`failure ${r.failure.reason} at=${r.failure.pos}`);
    return { lines: log.lines, r };
  };
  // Data bytes 2..3 lost.
  let g = gapAt(11, 2);
  t.deepEqual(g.lines, ['DATA flags=0x08 stream=1 length=7', 'data stream=1 bytes=2 lost=2 end=false', 'DATA flags=0x01 stream=1 length=1', 'data stream=1 bytes=1 end=true']);
  t.is(g.r.gapBytesSkipped, 2);
  // The last data byte and the padding.
  g = gapAt(13, 3);
  t.deepEqual(g.lines.slice(0, 2), ['DATA flags=0x08 stream=1 length=7', 'data stream=1 bytes=3 lost=1 end=false']);
  // Padding only.
  t.deepEqual(gapAt(14, 2).lines.slice(1, 2), ['data stream=1 bytes=4 end=false']);
  // Past the frame's end: the next header is lost.
  t.deepEqual(gapAt(14, 3).lines, ['DATA flags=0x08 stream=1 length=7', 'failure gap at=14']);
  // The pad length byte, a frame header.
  t.deepEqual(gapAt(9, 1).lines, ['DATA flags=0x08 stream=1 length=7', 'failure gap at=9']);
  t.deepEqual(gapAt(3, 2).lines, ['failure gap at=3']);
  // Inside a header block: HPACK state would be lost.
  const hb = Buffer.concat([frame(T.HEADERS, 4, 1, [0x82, 0x84]), frame(0xfa, 0, 0, [1, 2, 3])]);
  const log = new FrameLog();
  const r = new Http2FrameReader(log, { start: 'frame' });
  r.push(hb.subarray(0, 10));
  t.false(r.gap(1));
  t.false(r.push(hb.subarray(11)));
  t.deepEqual(r.failure, { reason: 'gap', pos: 10 });
  t.is(r.position, hb.length);
  // Inside an unknown frame's payload: skipped.
  const r2 = new Http2FrameReader(new FrameLog(), { start: 'frame' });
  r2.push(hb.subarray(0, 21));
  t.true(r2.gap(2));
  t.true(r2.push(Buffer.concat([hb.subarray(23), frame(T.DATA, 1, 1, [7])])));
  t.is(r2.frames, 3);
});

test('real capture: a 1000-byte gap inside each DATA payload of a 40000-byte response is skipped exactly', (t) => {
  const bytes = loadCapture('curl-prior-knowledge').bytes.egress;
  const expected = referenceLines(bytes, false);
  const dataLines = expected.filter((l) => l.startsWith('data '));
  t.is(dataLines.length, 3);
  for (const line of dataLines) {
    const at = Number(/ at=(\d+)/.exec(line)![1]);
    const log = new FrameLog(bytes);
    const r = new Http2FrameReader(log, startOf('egress'));
    r.push(bytes.subarray(0, at + 100));
    t.true(r.gap(1000));
    r.push(bytes.subarray(at + 1100));
    const n = Number(/ bytes=(\d+)/.exec(line)![1]);
    t.deepEqual(log.lines, expected.map((l) => (l === line ? l.replace(` bytes=${n} `, ` bytes=${n - 1000} lost=1000 `) : l)));
    t.is(r.gapBytesSkipped, 1000);
    t.is(r.position, bytes.length);
  }
});
