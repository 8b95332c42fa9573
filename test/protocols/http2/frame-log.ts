// Test helpers for the HTTP/2 frame reader: a handler that logs what the
// reader reports as lines, an independent whole-buffer parser that says what
// those lines must be (written without the reader's code: one frame at a
// time over the complete buffer), and the recorded captures.

import fs from 'node:fs';
import path from 'node:path';
import { Http2FrameReader, type Http2FrameHandler, type Http2ReaderOptions, type Http2Setting } from '../../../src/protocols/http2/frames';
import type { Side } from '../../../src/protocols/types';

export const TYPE_NAMES = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'CONTINUATION'];
const typeName = (t: number): string => TYPE_NAMES[t] ?? `type_0x${t.toString(16)}`;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export function frameLine(type: number, flags: number, stream: number, length: number): string {
  return `${typeName(type)} flags=0x${flags.toString(16).padStart(2, '0')} stream=${stream} length=${length}`;
}

/**
 * Logs the reader's calls. DATA pieces must be views into `source` (the
 * whole side's bytes, of which every pushed chunk is a subarray): the log
 * gives each frame's data as its offset in the source and its length, and
 * refuses pieces that are not contiguous there, so content is checked
 * without copying it.
 */
export class FrameLog implements Http2FrameHandler {
  readonly lines: string[] = [];
  private dataAt = -1;
  private dataEndAt = -1;
  private dataBytes = 0;
  private lost = 0;

  constructor(private readonly source?: Uint8Array) {}

  preface(): void {
    this.lines.push('preface');
  }
  frame(type: number, flags: number, streamId: number, length: number): void {
    this.lines.push(frameLine(type, flags, streamId, length));
  }
  data(_streamId: number, bytes: Uint8Array): void {
    if (this.source !== undefined) {
      if (bytes.buffer !== this.source.buffer) throw new Error('DATA piece is not a view of the source');
      const at = bytes.byteOffset - this.source.byteOffset;
      if (this.dataAt < 0) this.dataAt = at;
      else if (at !== this.dataEndAt) throw new Error(`DATA piece at ${at}, expected ${this.dataEndAt}`);
      this.dataEndAt = at + bytes.length;
    }
    this.dataBytes += bytes.length;
  }
  dataGap(_streamId: number, bytes: number): void {
    this.lost += bytes;
    if (this.dataEndAt >= 0) this.dataEndAt += bytes;
  }
  dataEnd(streamId: number, endStream: boolean): void {
    const at = this.source === undefined || this.dataAt < 0 ? '' : ` at=${this.dataAt}`;
    const lost = this.lost > 0 ? ` lost=${this.lost}` : '';
    this.lines.push(`data stream=${streamId}${at} bytes=${this.dataBytes}${lost} end=${endStream}`);
    this.dataAt = -1;
    this.dataEndAt = -1;
    this.dataBytes = 0;
    this.lost = 0;
  }
  headers(streamId: number, endStream: boolean, block: Uint8Array): void {
    this.lines.push(`headers stream=${streamId} end=${endStream} block=${hex(block)}`);
  }
  pushPromise(streamId: number, promisedStreamId: number, block: Uint8Array): void {
    this.lines.push(`push stream=${streamId} promised=${promisedStreamId} block=${hex(block)}`);
  }
  priority(streamId: number, dependency: number, exclusive: boolean, weight: number): void {
    this.lines.push(`priority stream=${streamId} dep=${dependency} exclusive=${exclusive} weight=${weight}`);
  }
  rstStream(streamId: number, errorCode: number): void {
    this.lines.push(`rst stream=${streamId} code=${errorCode}`);
  }
  settings(ack: boolean, values: readonly Http2Setting[]): void {
    this.lines.push(`settings ack=${ack} [${values.map((v) => `${v.id}=${v.value}`).join(',')}]`);
  }
  ping(ack: boolean, opaque: Uint8Array): void {
    this.lines.push(`ping ack=${ack} ${hex(opaque)}`);
  }
  goaway(lastStreamId: number, errorCode: number, debugLength: number): void {
    this.lines.push(`goaway last=${lastStreamId} code=${errorCode} debug=${debugLength}`);
  }
  windowUpdate(streamId: number, increment: number): void {
    this.lines.push(`window stream=${streamId} increment=${increment}`);
  }
}

/** Feeds `source` cut at `cuts` (ascending offsets) and returns the log, with the failure if any. */
export function readCut(source: Buffer, cuts: readonly number[], options: Http2ReaderOptions): { lines: string[]; reader: Http2FrameReader } {
  const log = new FrameLog(source);
  const reader = new Http2FrameReader(log, options);
  let from = 0;
  for (const c of [...cuts, source.length]) {
    if (c > from) reader.push(source.subarray(from, c));
    from = Math.max(from, c);
  }
  if (reader.failure !== undefined) log.lines.push(`failure ${reader.failure.reason} at=${reader.failure.pos}`);
  return { lines: log.lines, reader };
}

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

/**
 * The lines a correct reader logs for `buf` (whole, well-formed, starting at a
 * frame or, with `preface`, at the client preface): one frame at a time,
 * straight from RFC 9113 §6. Throws on anything it does not expect.
 */
export function referenceLines(buf: Buffer, preface: boolean): string[] {
  const out: string[] = [];
  let p = 0;
  if (preface) {
    if (buf.toString('latin1', 0, 24) !== PREFACE) throw new Error('no preface');
    out.push('preface');
    p = 24;
  }
  let block: Buffer[] = [];
  let blockHead = '';
  while (p < buf.length) {
    const length = buf.readUIntBE(p, 3);
    const type = buf[p + 3]!;
    const flags = buf[p + 4]!;
    const stream = buf.readUInt32BE(p + 5) & 0x7fffffff;
    let payload = buf.subarray(p + 9, p + 9 + length);
    if (payload.length !== length) throw new Error(`truncated frame at ${p}`);
    out.push(frameLine(type, flags, stream, length));
    const payloadAt = p + 9;
    p += 9 + length;
    let skip = 0;
    if ((type === 0 || type === 1 || type === 5) && (flags & 0x8) !== 0) {
      skip = 1;
      payload = payload.subarray(1, payload.length - payload[0]!);
    }
    switch (type) {
      case 0:
        out.push(`data stream=${stream} at=${payloadAt + skip} bytes=${payload.length} end=${(flags & 1) !== 0}`);
        break;
      case 1:
      case 5:
      case 9: {
        let fragment = payload;
        if (type === 1) {
          if ((flags & 0x20) !== 0) fragment = fragment.subarray(5);
          blockHead = `headers stream=${stream} end=${(flags & 1) !== 0}`;
        }
        if (type === 5) {
          blockHead = `push stream=${stream} promised=${fragment.readUInt32BE(0) & 0x7fffffff}`;
          fragment = fragment.subarray(4);
        }
        block.push(fragment);
        if ((flags & 4) !== 0) {
          out.push(`${blockHead} block=${Buffer.concat(block).toString('hex')}`);
          block = [];
        }
        break;
      }
      case 2: {
        const dep = payload.readUInt32BE(0);
        out.push(`priority stream=${stream} dep=${dep & 0x7fffffff} exclusive=${dep >>> 31 === 1} weight=${payload[4]! + 1}`);
        break;
      }
      case 3:
        out.push(`rst stream=${stream} code=${payload.readUInt32BE(0)}`);
        break;
      case 4: {
        const values: string[] = [];
        for (let s = 0; s < payload.length; s += 6) values.push(`${payload.readUInt16BE(s)}=${payload.readUInt32BE(s + 2)}`);
        out.push(`settings ack=${(flags & 1) !== 0} [${values.join(',')}]`);
        break;
      }
      case 6:
        out.push(`ping ack=${(flags & 1) !== 0} ${payload.toString('hex')}`);
        break;
      case 7:
        out.push(`goaway last=${payload.readUInt32BE(0) & 0x7fffffff} code=${payload.readUInt32BE(4)} debug=${payload.length - 8}`);
        break;
      case 8:
        out.push(`window stream=${stream} increment=${payload.readUInt32BE(0) & 0x7fffffff}`);
        break;
    }
  }
  return out;
}

export interface CaptureEvent {
  readonly side: Side;
  readonly pos: number;
  readonly atUs: number;
  readonly data: Buffer;
}

export interface Capture {
  readonly name: string;
  readonly events: readonly CaptureEvent[];
  /** Each side's bytes, whole. */
  readonly bytes: Readonly<Record<Side, Buffer>>;
  /** Offsets where the recorded reads cut each side. */
  readonly cuts: Readonly<Record<Side, number[]>>;
  /** `nghttp -v` output, for the nghttp cases. */
  readonly nghttpLog?: string;
}

export const FIXTURES = path.join(__dirname, '../../../../test/fixtures/http2');

export function loadCapture(name: string): Capture {
  const dir = path.join(FIXTURES, name);
  const events = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const e = JSON.parse(l) as { side: Side; pos: number; atUs: number; data: string };
    return { side: e.side, pos: e.pos, atUs: e.atUs, data: Buffer.from(e.data, 'base64') };
  });
  const parts: Record<Side, Buffer[]> = { ingress: [], egress: [] };
  const cuts: Record<Side, number[]> = { ingress: [], egress: [] };
  const len: Record<Side, number> = { ingress: 0, egress: 0 };
  for (const e of events) {
    if (e.pos !== len[e.side]) throw new Error(`${name}: ${e.side} event at ${e.pos}, expected ${len[e.side]}`);
    if (len[e.side] > 0) cuts[e.side].push(len[e.side]);
    parts[e.side].push(e.data);
    len[e.side] += e.data.length;
  }
  const logPath = path.join(dir, 'nghttp-v.txt');
  const capture: Capture = {
    name,
    events,
    bytes: { ingress: Buffer.concat(parts.ingress), egress: Buffer.concat(parts.egress) },
    cuts,
  };
  return fs.existsSync(logPath) ? { ...capture, nghttpLog: fs.readFileSync(logPath, 'utf8') } : capture;
}

/** Frame lines of `nghttp -v` output: `send` frames go client to server (ingress at the server), `recv` the other way. */
export function nghttpFrames(log: string): Record<Side, string[]> {
  const out: Record<Side, string[]> = { ingress: [], egress: [] };
  const re = /\] (send|recv) (\w+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>/g;
  for (const m of log.matchAll(re)) {
    const type = TYPE_NAMES.indexOf(m[2]!);
    out[m[1] === 'send' ? 'ingress' : 'egress'].push(frameLine(type, parseInt(m[4]!, 16), Number(m[5]), Number(m[3])));
  }
  return out;
}

/** One frame's bytes. */
export function frame(type: number, flags: number, stream: number, payload: Uint8Array | readonly number[] = []): Buffer {
  const p = Buffer.from(payload as Uint8Array);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, p]);
}
