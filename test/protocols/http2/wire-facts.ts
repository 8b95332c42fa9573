// What the bytes of a capture say about each client stream, read without the
// session or record code: the frame reader and an HPACK decoder that saw the
// connection from its start. The golden test checks expected.json against it
// (so a value in expected.json is the wire's, not the session's).

import { Http2FrameReader, type Http2FrameHandler } from '../../../src/protocols/http2/frames';
import { HpackDecoder, HpackFieldList } from '../../../src/protocols/http2/hpack';
import type { Side } from '../../../src/protocols/types';
import type { ReplayCase } from '../../helpers/protocol-replay';

export interface StreamFacts {
  readonly id: number;
  /** Request side: stream position and chunk start time of the HEADERS frame that opened it. */
  pos?: number;
  startNs?: number;
  /** End time of the chunk holding each side's END_STREAM, or an RST_STREAM. */
  requestEndNs?: number;
  responseEndNs?: number;
  reset?: { side: Side; code: number; atNs: number };
  /** End time of the chunk holding a server GOAWAY whose last stream id is below this one, when it had not ended. */
  refusedNs?: number;
  /** DATA payload bytes (padding excluded) per side. */
  requestBody: number;
  responseBody: number;
  /** The DATA payloads themselves, for the gRPC prefixes. */
  requestData: Buffer[];
  responseData: Buffer[];
  /** Decoded header blocks, in order: [side, fields]. */
  heads: Array<[Side, Record<string, string>]>;
}

/** The request side's and response side's facts per client stream, from a case seen from its start (no gaps). */
export function wireFacts(c: ReplayCase): Map<number, StreamFacts> {
  const requestSide: Side = c.session.conn.role === 'server' ? 'ingress' : 'egress';
  const streams = new Map<number, StreamFacts>();
  const of = (id: number): StreamFacts => {
    let s = streams.get(id);
    if (s === undefined) {
      s = { id, requestBody: 0, responseBody: 0, requestData: [], responseData: [], heads: [] };
      streams.set(id, s);
    }
    return s;
  };
  const make = (side: Side) => {
    const isRequest = side === requestSide;
    const decoder = new HpackDecoder({});
    const list = new HpackFieldList();
    const chunk = { pos: 0, readerPos: 0, startNs: 0, endNs: 0, prevStartNs: 0 };
    const handler: Http2FrameHandler = {
      preface() {},
      frame(type, _flags, streamId) {
        if (!isRequest || type !== 1 || (streamId & 1) === 0 || streams.get(streamId)?.pos !== undefined) return;
        const at = reader.position - 9;
        const s = of(streamId);
        s.pos = chunk.pos - (chunk.readerPos - at);
        s.startNs = at >= chunk.readerPos ? chunk.startNs : chunk.prevStartNs;
      },
      data(streamId, bytes) {
        const s = of(streamId);
        if (isRequest) {
          s.requestBody += bytes.length;
          s.requestData.push(Buffer.from(bytes));
        } else {
          s.responseBody += bytes.length;
          s.responseData.push(Buffer.from(bytes));
        }
      },
      dataGap() {},
      dataEnd(streamId, endStream) {
        if (endStream) of(streamId)[isRequest ? 'requestEndNs' : 'responseEndNs'] = chunk.endNs;
      },
      headers(streamId, endStream, block) {
        const fields: Record<string, string> = {};
        if (decoder.decode(Buffer.from(block), list) === 'ok') {
          for (let i = 0; i < list.count; i++) if (list.names[i] !== undefined && list.values[i] !== undefined) fields[list.names[i]!] = list.values[i]!;
        }
        const s = of(streamId);
        s.heads.push([side, fields]);
        if (endStream) s[isRequest ? 'requestEndNs' : 'responseEndNs'] = chunk.endNs;
      },
      pushPromise(_streamId, _promised, block) {
        decoder.decode(Buffer.from(block), list);
      },
      priority() {},
      rstStream(streamId, code) {
        of(streamId).reset ??= { side, code, atNs: chunk.endNs };
      },
      settings() {},
      ping() {},
      goaway(lastStreamId) {
        if (isRequest) return;
        for (const s of streams.values()) if (s.id > lastStreamId && s.responseEndNs === undefined && s.reset === undefined) s.refusedNs ??= chunk.endNs;
      },
      windowUpdate() {},
    };
    const reader = new Http2FrameReader(handler, { start: isRequest ? 'client-preface' : 'server-preface' });
    return { reader, chunk };
  };
  const sides = { ingress: make('ingress'), egress: make('egress') };
  for (const e of c.events) {
    if (e.kind === 'gap') throw new Error(`${c.name}: wireFacts reads whole captures only`);
    if (e.kind !== 'chunk') continue;
    const d = sides[e.chunk.side];
    d.chunk.prevStartNs = d.chunk.startNs;
    d.chunk.pos = e.chunk.pos;
    d.chunk.readerPos = d.reader.position;
    d.chunk.startNs = e.chunk.startNs;
    d.chunk.endNs = e.chunk.endNs;
    if (!d.reader.push(e.chunk.data)) break;
  }
  streams.delete(0);
  return streams;
}

/** gRPC length-prefixed messages in a side's DATA: [count, bytes], or undefined when they do not tile it exactly. */
export function grpcMessages(data: readonly Buffer[]): [number, number] | undefined {
  const b = Buffer.concat(data);
  let i = 0;
  let count = 0;
  let bytes = 0;
  while (i + 5 <= b.length) {
    const n = b.readUInt32BE(i + 1);
    count++;
    bytes += n;
    i += 5 + n;
  }
  return i === b.length ? [count, bytes] : undefined;
}

/** grpc-timeout in seconds, as the decimal the header writes. */
export function grpcTimeoutSeconds(v: string): number {
  const n = Number(v.slice(0, -1));
  const unit = v[v.length - 1]!;
  const perSecond: Record<string, number> = { m: 1e3, u: 1e6, n: 1e9 };
  const seconds: Record<string, number> = { S: 1, M: 60, H: 3600 };
  return perSecond[unit] !== undefined ? n / perSecond[unit]! : n * seconds[unit]!;
}
