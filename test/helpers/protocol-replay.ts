// Replays golden captures against a protocol: test/fixtures/<proto>/<case>/
//   events.jsonl   the input, one JSON object a line:
//     {"session": {"conn": ConnectionInfo, "requestSide"?: Side, "options"?: ProtocolOptions}}   (first line)
//     {"side", "pos", "startNs", "endNs", "syscallStart", "data": base64}   a captured chunk
//       ("text": the bytes as a latin1 JSON string may stand in for "data", to keep captures readable)
//     {"gap": {"side", "pos", "bytes", "atNs"}}   bytes that moved but were not captured
//     {"expire": {"now", "timeout"}}             ProtocolSession.expire()
//     {"close": atNs}                             ProtocolSession.close()
//   expected.json  {"records": L7Record[], "stats": ProtocolStats,
//                   "starts": RequestStarted[], "abandons": [sequence, atNs][]}   (what the session told its observer)
// Without "requestSide" the session is created the way the tracker does it:
// detect() on the first chunk that starts a syscall.
//
// Each case is replayed (a) whole, (b) with chunks split at every byte
// position (the first piece keeps syscallStart), and (c) with the two sides
// interleaved differently where their order is not fixed: a chunk (or gap)
// that ended before another began stays before it; chunks whose times overlap
// may come in either order. Records, stats and observer signals must be
// exactly equal each time, and every started request must end in exactly one
// record or one abandon.

import type { ExecutionContext } from 'ava';
import type { Http1Options } from '../../src/protocols/http1/config';
import type { DbOptions } from '../../src/protocols/db/semantics';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  CommonProtocolOptions,
  ConnectionInfo,
  L7Record,
  ProtocolDefinition,
  ProtocolSession,
  ProtocolStats,
  RequestStarted,
  SessionObserver,
  Side,
} from '../../src/protocols/types';

/** A protocol's options as a case gives them: the common ones and any protocol's own (HTTP/1's routes and headers, a database's queryText). */
export type ProtocolOptions = CommonProtocolOptions & Partial<Http1Options> & Partial<DbOptions>;

export interface SessionSpec {
  readonly conn: ConnectionInfo;
  readonly requestSide?: Side;
  readonly options?: ProtocolOptions;
}

export interface ChunkEvent {
  readonly side: Side;
  readonly pos: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly syscallStart: boolean;
  readonly data: Buffer;
}

export type ReplayEvent =
  | { readonly kind: 'chunk'; readonly chunk: ChunkEvent }
  | { readonly kind: 'gap'; readonly side: Side; readonly pos: number; readonly bytes: number; readonly atNs: number }
  | { readonly kind: 'expire'; readonly now: number; readonly timeout: number }
  | { readonly kind: 'close'; readonly atNs: number };

export interface ReplayCase {
  readonly name: string;
  readonly session: SessionSpec;
  readonly events: readonly ReplayEvent[];
}

export interface ReplayResult {
  readonly records: L7Record[];
  readonly stats: ProtocolStats;
  /** requestStarted() calls, in order. */
  readonly starts: RequestStarted[];
  /** requestAbandoned() calls, in order: [sequence, atNs]. */
  readonly abandons: [number, number][];
}

export interface ReplayOutcome extends ReplayResult {
  /** Largest bufferedBytes() seen after any event. */
  readonly maxBuffered: number;
  readonly requestSide: Side | undefined;
  /** Broken promises of the observer contract (empty when kept). */
  readonly contractViolations: string[];
}

// --- files ----------------------------------------------------------------

/** Printable ASCII plus CR, LF and TAB: such chunks are written as text. */
function isReadable(b: Buffer): boolean {
  for (const x of b) if (!((x >= 0x20 && x < 0x7f) || x === 0x0d || x === 0x0a || x === 0x09)) return false;
  return true;
}

export function serializeCase(c: { session: SessionSpec; events: readonly ReplayEvent[] }): string {
  const lines = [JSON.stringify({ session: c.session })];
  for (const e of c.events) {
    switch (e.kind) {
      case 'chunk': {
        const { data, ...rest } = e.chunk;
        lines.push(JSON.stringify(isReadable(data) ? { ...rest, text: data.toString('latin1') } : { ...rest, data: data.toString('base64') }));
        break;
      }
      case 'gap':
        lines.push(JSON.stringify({ gap: { side: e.side, pos: e.pos, bytes: e.bytes, atNs: e.atNs } }));
        break;
      case 'expire':
        lines.push(JSON.stringify({ expire: { now: e.now, timeout: e.timeout } }));
        break;
      case 'close':
        lines.push(JSON.stringify({ close: e.atNs }));
        break;
    }
  }
  return `${lines.join('\n')}\n`;
}

export function parseCase(name: string, jsonl: string): ReplayCase {
  let session: SessionSpec | undefined;
  const events: ReplayEvent[] = [];
  for (const line of jsonl.split('\n')) {
    if (line.trim() === '') continue;
    const o = JSON.parse(line) as Record<string, unknown>;
    if ('session' in o) session = o.session as SessionSpec;
    else if ('gap' in o) {
      const g = o.gap as { side: Side; pos: number; bytes: number; atNs: number };
      events.push({ kind: 'gap', side: g.side, pos: g.pos, bytes: g.bytes, atNs: g.atNs });
    } else if ('expire' in o) {
      const x = o.expire as { now: number; timeout: number };
      events.push({ kind: 'expire', now: x.now, timeout: x.timeout });
    } else if ('close' in o) events.push({ kind: 'close', atNs: o.close as number });
    else {
      const c = o as { side: Side; pos: number; startNs: number; endNs: number; syscallStart: boolean; data?: string; text?: string };
      const data = c.data !== undefined ? Buffer.from(c.data, 'base64') : Buffer.from(c.text ?? '', 'latin1');
      events.push({ kind: 'chunk', chunk: { side: c.side, pos: c.pos, startNs: c.startNs, endNs: c.endNs, syscallStart: c.syscallStart, data } });
    }
  }
  if (session === undefined) throw new Error(`${name}: no session line`);
  return { name, session, events };
}

export function loadCase(dir: string): { input: ReplayCase; expected: ReplayResult } {
  const name = path.basename(dir);
  const input = parseCase(name, fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as ReplayResult;
  return { input, expected };
}

export function listCases(root: string): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, d.name, 'events.jsonl')))
    .map((d) => path.join(root, d.name))
    .sort();
}

// --- replay -----------------------------------------------------------------

/** Feeds events to a session created per `spec`; the session is closed (silently) at the end if the case did not. */
export function replay(proto: ProtocolDefinition, spec: SessionSpec, events: readonly ReplayEvent[]): ReplayOutcome {
  const records: L7Record[] = [];
  const starts: RequestStarted[] = [];
  const abandons: [number, number][] = [];
  const observer: SessionObserver = {
    requestStarted: (r) => starts.push(r),
    requestAbandoned: (sequence, atNs) => abandons.push([sequence, atNs]),
  };
  let session: ProtocolSession | undefined;
  let requestSide = spec.requestSide;
  const held: ChunkEvent[] = [];
  let maxBuffered = 0;
  let closed = false;
  const open = (side: Side) => {
    session = proto.createSession(spec.conn, side, spec.options ?? {}, observer);
    requestSide = side;
  };
  if (requestSide !== undefined) open(requestSide);
  for (const e of events) {
    if (session === undefined) {
      // Detection as the tracker does it: from a syscall start, holding chunks until decided.
      if (e.kind !== 'chunk') continue;
      if (held.length === 0 && !e.chunk.syscallStart) continue;
      held.push(e.chunk);
      const head = Buffer.concat(held.filter((h) => h.side === e.chunk.side).map((h) => h.data));
      const d = proto.detect(e.chunk.side, head.subarray(0, proto.maxDetectBytes), spec.conn);
      if (d.result === 'match') {
        open(d.requestSide);
        for (const h of held) session!.onChunk(h, records);
      } else if (d.result === 'no' || head.length >= proto.maxDetectBytes) held.length = 0;
      continue;
    }
    const s: ProtocolSession = session;
    switch (e.kind) {
      case 'chunk':
        s.onChunk(e.chunk, records);
        break;
      case 'gap':
        s.onGap(e.side, e.pos, e.bytes, e.atNs, records);
        break;
      case 'expire':
        s.expire(e.now, e.timeout, records);
        break;
      case 'close':
        s.close(e.atNs, records);
        closed = true;
        break;
    }
    maxBuffered = Math.max(maxBuffered, s.bufferedBytes());
  }
  const stats = session ? { ...session.stats } : emptyStats();
  const result = { records: [...records], stats, starts: [...starts], abandons: [...abandons] };
  // Closing (silently, if the case did not) settles every started request.
  const after: L7Record[] = [];
  if (session && !closed) session.close(Number.MAX_SAFE_INTEGER, after);
  return { ...result, maxBuffered, requestSide, contractViolations: observerViolations(starts, [...records, ...after], abandons) };
}

/** Every started request ends in exactly one record or one abandon; nothing ends that did not start. */
export function observerViolations(starts: readonly RequestStarted[], records: readonly L7Record[], abandons: readonly [number, number][]): string[] {
  const out: string[] = [];
  const started = new Set<number>();
  for (const s of starts) {
    if (started.has(s.sequence)) out.push(`request ${s.sequence} started twice`);
    started.add(s.sequence);
  }
  const ended = new Map<number, number>();
  for (const r of records) ended.set(r.sequence, (ended.get(r.sequence) ?? 0) + 1);
  for (const [seq] of abandons) {
    if (!started.has(seq)) out.push(`request ${seq} abandoned but never started`);
    ended.set(seq, (ended.get(seq) ?? 0) + 1);
  }
  for (const seq of started) {
    const n = ended.get(seq) ?? 0;
    if (n !== 1) out.push(`request ${seq} started and ended ${n} times`);
  }
  return out;
}

function emptyStats(): ProtocolStats {
  return { records: 0, parseErrors: 0, unpairedResponses: 0, requestsWithoutResponse: 0, bytesSkipped: 0, headerValuesDropped: 0 };
}

// --- variants ---------------------------------------------------------------

/** Every chunk longer than `at` split in two at `at` (the second piece does not start a syscall). */
export function splitAt(events: readonly ReplayEvent[], at: number): ReplayEvent[] {
  const out: ReplayEvent[] = [];
  for (const e of events) {
    if (e.kind !== 'chunk' || e.chunk.data.length <= at) {
      out.push(e);
      continue;
    }
    const c = e.chunk;
    out.push({ kind: 'chunk', chunk: { ...c, data: c.data.subarray(0, at) } });
    out.push({ kind: 'chunk', chunk: { ...c, pos: c.pos + at, syscallStart: false, data: c.data.subarray(at) } });
  }
  return out;
}

/** Every chunk fed one byte at a time. */
export function bytewise(events: readonly ReplayEvent[]): ReplayEvent[] {
  const out: ReplayEvent[] = [];
  for (const e of events) {
    if (e.kind !== 'chunk') {
      out.push(e);
      continue;
    }
    const c = e.chunk;
    for (let i = 0; i < c.data.length; i++) {
      out.push({ kind: 'chunk', chunk: { ...c, pos: c.pos + i, syscallStart: c.syscallStart && i === 0, data: c.data.subarray(i, i + 1) } });
    }
  }
  return out;
}

/**
 * Split positions to try: every byte up to `dense`, then every `stride`-th and
 * the last `dense` bytes of the longest chunk (large bodies would otherwise
 * need millions of replays; the bytewise variant covers every position once).
 */
export function splitPositions(events: readonly ReplayEvent[], dense = 2048, stride = 509): number[] {
  let longest = 0;
  for (const e of events) if (e.kind === 'chunk') longest = Math.max(longest, e.chunk.data.length);
  const out: number[] = [];
  for (let k = 1; k < longest; k++) {
    if (k <= dense || k >= longest - dense || k % stride === 0) out.push(k);
  }
  return out;
}

function span(e: ReplayEvent): { side: Side; startNs: number; endNs: number } | undefined {
  if (e.kind === 'chunk') return { side: e.chunk.side, startNs: e.chunk.startNs, endNs: e.chunk.endNs };
  if (e.kind === 'gap') return { side: e.side, startNs: e.atNs, endNs: e.atNs };
  return undefined;
}

/** True when no event comes after an event of the other side that began after it ended. */
export function respectsTime(events: readonly ReplayEvent[]): boolean {
  for (let i = 0; i < events.length; i++) {
    const a = span(events[i]!);
    if (a === undefined) continue;
    for (let j = 0; j < i; j++) {
      const b = span(events[j]!);
      if (b !== undefined && b.side !== a.side && a.endNs < b.startNs) return false;
    }
  }
  return true;
}

/**
 * The two extreme interleavings: each side's events as early as the time
 * order allows. Expire/close events are barriers that keep their place.
 */
export function interleavings(events: readonly ReplayEvent[]): ReplayEvent[][] {
  return (['egress', 'ingress'] as const).map((prefer) => {
    const out: ReplayEvent[] = [];
    let segment: ReplayEvent[] = [];
    const flush = () => {
      out.push(...mergeSegment(segment, prefer));
      segment = [];
    };
    for (const e of events) {
      if (e.kind === 'expire' || e.kind === 'close') {
        flush();
        out.push(e);
      } else segment.push(e);
    }
    flush();
    return out;
  });
}

function mergeSegment(events: readonly ReplayEvent[], prefer: Side): ReplayEvent[] {
  const bySide: Record<Side, ReplayEvent[]> = { egress: [], ingress: [] };
  for (const e of events) bySide[span(e)!.side].push(e);
  const other: Side = prefer === 'egress' ? 'ingress' : 'egress';
  const idx: Record<Side, number> = { egress: 0, ingress: 0 };
  const out: ReplayEvent[] = [];
  // `e` of `side` may go next if nothing left on the other side ended before it began.
  const allowed = (side: Side): boolean => {
    const e = bySide[side][idx[side]];
    if (e === undefined) return false;
    const s = span(e)!;
    const o: Side = side === 'egress' ? 'ingress' : 'egress';
    for (let k = idx[o]; k < bySide[o].length; k++) if (span(bySide[o][k]!)!.endNs < s.startNs) return false;
    return true;
  };
  while (idx.egress < bySide.egress.length || idx.ingress < bySide.ingress.length) {
    const side = allowed(prefer) ? prefer : allowed(other) ? other : undefined;
    if (side === undefined) throw new Error('events are not consistent in time');
    out.push(bySide[side][idx[side]++]!);
  }
  return out;
}

/** JSON form with sorted keys, so that equality does not depend on key order. */
export function canonical<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => {
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
    }
    return x;
  })) as T;
}

export interface VariantRun {
  readonly label: string;
  readonly result: ReplayOutcome;
}

/** All variants of a case: whole, interleavings, bytewise, split at each position. */
export function* variants(proto: ProtocolDefinition, c: ReplayCase): Generator<VariantRun> {
  yield { label: 'whole', result: replay(proto, c.session, c.events) };
  for (const [i, order] of interleavings(c.events).entries()) {
    yield { label: `interleaving ${i === 0 ? 'egress-first' : 'ingress-first'}`, result: replay(proto, c.session, order) };
  }
  yield { label: 'bytewise', result: replay(proto, c.session, bytewise(c.events)) };
  for (const k of splitPositions(c.events)) {
    yield { label: `split at ${k}`, result: replay(proto, c.session, splitAt(c.events, k)) };
  }
}

/**
 * Asserts that every variant gives `expected` exactly (records, stats and
 * observer signals) and keeps the observer contract; stops at the first that
 * does not. Yields to the event loop now and then: a large case takes a
 * while, and the worker must stay responsive.
 */
export async function assertEveryVariant(t: ExecutionContext, name: string, runs: Iterable<VariantRun>, expected: ReplayResult): Promise<void> {
  const want = JSON.stringify(canonical(expected));
  let count = 0;
  /** The first variant's output as produced (not canonical), once it equals expected: a cheap exact comparison for the rest. */
  let same: string | undefined;
  for (const v of runs) {
    count++;
    if (count % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    const { records, stats, starts, abandons } = v.result;
    if (v.result.contractViolations.length > 0) {
      t.deepEqual(v.result.contractViolations, [], `${name} (${v.label})`);
      return;
    }
    const raw = JSON.stringify({ records, stats, starts, abandons });
    if (raw === same) continue;
    const got = canonical({ records, stats, starts, abandons });
    if (JSON.stringify(got) !== want) {
      t.deepEqual(got, canonical(expected), `${name} (${v.label})`);
      return;
    }
    same ??= raw;
  }
  t.pass(`${count} variants`);
}
