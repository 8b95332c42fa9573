// The decoder against another encoder: Node's http2 client (nghttp2) sends
// requests to a bare TCP server on loopback that answers the connection
// preface with its own SETTINGS and keeps the HEADERS blocks it receives.

import test from 'ava';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { HpackDecoder, HpackFieldList, HPACK_FIELD_NEVER_INDEXED, HPACK_FIELD_UNKNOWN } from '../../../src/protocols/http2/hpack';

const PREFACE_LENGTH = 24;
const FRAME_HEADERS = 1;
const FRAME_SETTINGS = 4;
const FRAME_CONTINUATION = 9;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

interface Sent {
  readonly headers: Record<string, string>;
  readonly sensitive: readonly string[];
}

/** 40 requests: repeated and new names and values, long values that evict, a sensitive one. */
function requests(): Sent[] {
  const out: Sent[] = [];
  for (let i = 0; i < 40; i++) {
    const headers: Record<string, string> = {
      ':method': i % 3 === 0 ? 'GET' : 'POST',
      ':path': `/pkg.Service/Method${i % 5}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${100 + i}m`,
      traceparent: `00-${(i + 1).toString(16).padStart(32, '0')}-${(i + 7).toString(16).padStart(16, '0')}-01`,
      'x-tenant': `tenant-${i % 4}`,
    };
    if (i % 7 === 0) headers['x-blob'] = 'b'.repeat(200 + i);
    if (i % 9 === 0) headers['x-bytes'] = 'caf\u00e9 \u00ff\u0001';
    out.push({ headers, sensitive: i % 4 === 0 ? ['x-tenant'] : [] });
  }
  return out;
}

/** The HEADERS blocks of the client's streams, in the order they came. */
async function capture(settings: Buffer, sent: readonly Sent[]): Promise<Buffer[]> {
  const blocks: Buffer[] = [];
  let pending = Buffer.alloc(0);
  let fragment: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.write(Buffer.concat([frame(FRAME_SETTINGS, 0, 0, settings), frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0))]));
    let prefaceSeen = false;
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      if (!prefaceSeen) {
        if (pending.length < PREFACE_LENGTH) return;
        pending = pending.subarray(PREFACE_LENGTH);
        prefaceSeen = true;
      }
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        let payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === FRAME_HEADERS) {
          let start = 0;
          let end = payload.length;
          if (flags & FLAG_PADDED) {
            end -= payload[0]!;
            start = 1;
          }
          if (flags & FLAG_PRIORITY) start += 5;
          payload = payload.subarray(start, end);
        }
        if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
          fragment.push(Buffer.from(payload));
          if (flags & FLAG_END_HEADERS) {
            blocks.push(Buffer.concat(fragment));
            fragment = [];
          }
        }
      }
      if (blocks.length === sent.length) socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  // One at a time: nghttp2 encodes blocks in the order the requests are made.
  for (const s of sent) {
    const headers: http2.OutgoingHttpHeaders = { ...s.headers };
    if (s.sensitive.length > 0) (headers as Record<symbol, unknown>)[http2.sensitiveHeaders] = s.sensitive;
    const req = client.request(headers, { endStream: true });
    req.on('error', () => {});
    const n = blocks.length;
    while (blocks.length === n) await new Promise((r) => setTimeout(r, 2));
  }
  client.destroy();
  server.close();
  return blocks;
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function settingsPayload(tableSize: number | undefined): Buffer {
  if (tableSize === undefined) return Buffer.alloc(0);
  const b = Buffer.alloc(6);
  b.writeUInt16BE(1, 0); // SETTINGS_HEADER_TABLE_SIZE
  b.writeUInt32BE(tableSize, 2);
  return b;
}

for (const tableSize of [undefined, 256]) {
  test(`nghttp2's request blocks decode to the headers sent (table size ${tableSize ?? 'default'})`, async (t) => {
    const sent = requests();
    const blocks = await capture(settingsPayload(tableSize), sent);
    t.is(blocks.length, sent.length);
    const d = new HpackDecoder({ tableSizeLimit: tableSize ?? 4096 });
    const late = new HpackDecoder({ unsynced: true });
    const list = new HpackFieldList();
    for (let i = 0; i < blocks.length; i++) {
      t.is(d.decode(blocks[i]!, list), 'ok', `block ${i}`);
      const got: string[] = [];
      for (let k = 0; k < list.count; k++) {
        // Values are latin1 strings, one character per octet: Node sends header strings as latin1 too.
        got.push(`${list.names[k]}: ${list.values[k]}`);
        const sensitive = sent[i]!.sensitive.includes(list.names[k]!);
        if (sensitive) t.is(list.flags[k]! & HPACK_FIELD_NEVER_INDEXED, HPACK_FIELD_NEVER_INDEXED, `${list.names[k]}`);
      }
      const want = Object.entries(sent[i]!.headers).map(([n, v]) => `${n}: ${v}`);
      if (!want.some((w) => w.startsWith(':scheme'))) want.push(':scheme: http');
      if (!want.some((w) => w.startsWith(':authority'))) want.push(`:authority: ${got.find((g) => g.startsWith(':authority: '))?.slice(12)}`);
      t.deepEqual(got.slice().sort(), want.sort(), `block ${i}`);
      t.true(got.some((g) => g.startsWith(':authority: 127.0.0.1:')));

      // An agent attaching at request 10 lists a subset, never a different value.
      if (i < 10) continue;
      const names = list.names.slice(0, list.count);
      const values = list.values.slice(0, list.count);
      t.is(late.decode(blocks[i]!, list), 'ok');
      t.is(list.count, names.length);
      for (let k = 0; k < list.count; k++) {
        t.is(list.names[k] === undefined || list.values[k] === undefined, (list.flags[k]! & HPACK_FIELD_UNKNOWN) !== 0);
        if (list.names[k] !== undefined) t.is(list.names[k], names[k]);
        if (list.values[k] !== undefined) t.is(list.values[k], values[k]);
      }
    }
    t.is(d.stats.errors, 0);
    t.true(d.synced);
    t.true(d.tableLength > 0);
    if (tableSize === 256) t.is(d.maxTableSize, 256, 'nghttp2 said the new size back');
    // With the default table nghttp2 reuses entries across requests: the late decoder resolves those inserted since it attached.
    else t.true(late.stats.unsyncedResolved > 0 && late.stats.unknownReferences > 0);
    t.log(`late decoder: ${late.stats.unknownReferences} unknown references, ${late.stats.unsyncedResolved} resolved, synced ${late.synced}`);
  });
}
