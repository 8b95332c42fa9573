// The recorded HTTP/2 and gRPC connections the pipeline benchmark replays
// (bench/fixtures/http2/, bench/record-h2-traffic.mjs) hold what their README
// says: every connection reads whole from preface to GOAWAY in both
// directions, its header blocks decode against the dynamic table from the
// start, and it carries the streams case.json counts, each answered.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Http2FrameReader, type Http2FrameHandler } from '../../src/protocols/http2/frames';
import { HpackDecoder, HpackFieldList } from '../../src/protocols/http2/hpack';

const FIXTURES = path.resolve(__dirname, '../../..', 'bench', 'fixtures', 'http2');

interface Head {
  readonly stream: number;
  readonly endStream: boolean;
  readonly fields: Map<string, string>;
  readonly blockBytes: number;
}

/** One direction of a connection: every header block decoded, in order. */
function readSide(bytes: Buffer[], start: 'client-preface' | 'server-preface') {
  const heads: Head[] = [];
  const hpack = new HpackDecoder();
  const out = new HpackFieldList();
  let goaway = false;
  const noop = () => {};
  const handler: Http2FrameHandler = {
    preface: noop, frame: noop, data: noop, dataGap: noop, dataEnd: noop, pushPromise: noop, priority: noop,
    rstStream: noop, settings: noop, ping: noop, windowUpdate: noop,
    headers(stream, endStream, block) {
      out.clear();
      const r = hpack.decode(Buffer.from(block.buffer, block.byteOffset, block.byteLength), out);
      if (r !== 'ok') throw new Error(`HPACK ${r} on stream ${stream}`);
      const fields = new Map<string, string>();
      for (let i = 0; i < out.names.length; i++) fields.set(out.names[i]!, out.values[i]!);
      heads.push({ stream, endStream, fields, blockBytes: block.byteLength });
    },
    goaway() {
      goaway = true;
    },
  };
  const reader = new Http2FrameReader(handler, { start });
  for (const b of bytes) reader.push(b);
  return { heads, goaway, failure: reader.failure, stats: hpack.stats, buffered: reader.bufferedBytes() };
}

function load(name: string) {
  const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'case.json'), 'utf8')) as { connections: { streams: number }[] };
  const sides = meta.connections.map(() => ({ ingress: [] as Buffer[], egress: [] as Buffer[] }));
  for (const line of fs.readFileSync(path.join(FIXTURES, name, 'events.jsonl'), 'utf8').split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { conn: number; side: 'ingress' | 'egress'; data: string };
    sides[e.conn]![e.side].push(Buffer.from(e.data, 'base64'));
  }
  return meta.connections.map((c, i) => ({
    streams: c.streams,
    requests: readSide(sides[i]!.ingress, 'client-preface'),
    responses: readSide(sides[i]!.egress, 'server-preface'),
  }));
}

const count = <T>(xs: readonly T[], f: (x: T) => boolean) => xs.reduce((a, x) => a + (f(x) ? 1 : 0), 0);

for (const name of ['http2', 'grpc', 'http2-serial', 'grpc-serial']) {
  test(`bench fixture ${name}: whole connections, every stream requested and answered, HPACK indexing in use`, (t) => {
    const conns = load(name);
    t.is(conns.length, 4);
    for (const c of conns) {
      t.is(c.streams, 250);
      for (const side of [c.requests, c.responses]) {
        t.is(side.failure, undefined);
        t.is(side.buffered, 0, 'ends on a frame boundary');
        t.is(side.stats.unknownReferences, 0);
        t.is(side.stats.errors, 0);
      }
      t.true(c.requests.goaway || c.responses.goaway, 'the connection ends with a GOAWAY');
      const requests = c.requests.heads;
      t.is(requests.length, c.streams, 'one request header block a stream');
      t.deepEqual(requests.map((h) => h.stream), Array.from({ length: c.streams }, (_, i) => 2 * i + 1));
      // Later requests mostly refer to the dynamic table: far smaller blocks than the first.
      const later = requests.slice(10).reduce((a, h) => a + h.blockBytes, 0) / (requests.length - 10);
      t.true(later * 2 < requests[0]!.blockBytes, `first block ${requests[0]!.blockBytes} B, later ones ${later.toFixed(1)} B on average`);
      const answered = new Set(c.responses.heads.filter((h) => h.fields.has(':status')).map((h) => h.stream));
      t.is(answered.size, c.streams);
      if (name.startsWith('grpc')) {
        t.is(count(requests, (h) => h.fields.get(':path') === '/test.echo.Echo/Unary' && h.fields.get('content-type') === 'application/grpc' && h.fields.has('grpc-timeout')), c.streams);
        t.is(count(c.responses.heads, (h) => h.endStream && h.fields.get('grpc-status') === '0'), c.streams, 'trailers with grpc-status 0');
      } else {
        t.is(count(requests, (h) => h.fields.get(':method') === 'POST' && h.fields.get(':path') === '/api/cart/items'), c.streams / 5);
        t.is(count(requests, (h) => h.fields.get(':method') === 'GET'), (c.streams * 4) / 5);
        t.is(new Set(requests.map((h) => h.fields.get('x-request-id'))).size, c.streams, 'a fresh x-request-id each');
        t.is(count(c.responses.heads, (h) => h.fields.get(':status') === '404'), c.streams / 5, 'GETs of /api/cart/items');
        t.is(count(c.responses.heads, (h) => h.fields.get(':status') === '201'), c.streams / 5);
      }
    }
  });
}
