// Spans and log records printed for a person. Log records: one line each.
// Spans: one line per span as it ends and, once a trace
// has been quiet for a while (no new span for `quietMillis`), the whole trace
// as an indented tree. Parent and child are matched by parentSpanId; a span
// whose parent never appears is shown at the top level. Buffering is bounded
// (traces held, spans per trace) and counted.
//
// Line:  12:03:04.512Z  frontend  SERVER  GET /users/:id  ERROR 503  12.345ms  trace=4bf92f35 span=00f067aa
// Tree:  trace 4bf92f3577b34da6a3ce929d0e0e4736  3 spans  45.201ms
//        └─ SERVER frontend GET /checkout  45.201ms
//           ├─ CLIENT frontend GET  12.100ms
//           │  └─ SERVER backend GET /price  10.300ms
//           └─ CLIENT frontend POST  20.000ms  ERROR
// Log:   12:03:04.512Z  frontend  WARN  syscall.slow  "read took 1.2 s"  syscall.name=read  trace=4bf92f35 span=00f067aa

import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { realTimers, type Timers } from '../util/timers';
import type { LogRecord, LogValue } from './log-record';
import { hrTimeToNs } from './spans';

export interface ConsoleOptions {
  readonly write: (line: string) => void;
  /** A trace with no new span for this long is complete (default 2000 ms). */
  readonly quietMillis?: number;
  /** Traces held for their tree (default 1000); the oldest is printed early when full. */
  readonly maxTraces?: number;
  /** Spans kept per trace for its tree (default 500). */
  readonly maxSpansPerTrace?: number;
  readonly timers?: Timers;
}

export interface ConsoleStats {
  spans: number;
  treesPrinted: number;
  /** Trees printed before their quiet period because too many traces were held. */
  treesPrintedEarly: number;
  /** Spans left out of a tree because the trace had too many. */
  spansNotInTree: number;
}

interface PendingTrace {
  readonly traceId: string;
  readonly spans: ReadableSpan[];
  omitted: number;
  lastSeenMs: number;
}

export class ConsolePrinter {
  readonly stats: ConsoleStats = { spans: 0, treesPrinted: 0, treesPrintedEarly: 0, spansNotInTree: 0 };
  private readonly traces = new Map<string, PendingTrace>();
  private readonly quietMillis: number;
  private readonly maxTraces: number;
  private readonly maxSpansPerTrace: number;
  private readonly timers: Timers;
  private timer: unknown;

  constructor(private readonly opts: ConsoleOptions) {
    this.quietMillis = opts.quietMillis ?? 2000;
    this.maxTraces = Math.max(1, opts.maxTraces ?? 1000);
    this.maxSpansPerTrace = Math.max(1, opts.maxSpansPerTrace ?? 500);
    this.timers = opts.timers ?? realTimers;
  }

  /** Prints the span's line and holds it for its trace's tree. */
  onSpan(span: ReadableSpan): void {
    this.stats.spans++;
    this.opts.write(formatSpanLine(span));
    const traceId = span.spanContext().traceId;
    const now = this.timers.now();
    let t = this.traces.get(traceId);
    if (t) {
      // Keep insertion order = order of last activity, so the oldest quiet trace is first.
      this.traces.delete(traceId);
    } else {
      t = { traceId, spans: [], omitted: 0, lastSeenMs: now };
      while (this.traces.size >= this.maxTraces) {
        const oldest = this.traces.values().next().value as PendingTrace;
        this.traces.delete(oldest.traceId);
        this.stats.treesPrintedEarly++;
        this.printTree(oldest);
      }
    }
    t.lastSeenMs = now;
    if (t.spans.length < this.maxSpansPerTrace) t.spans.push(span);
    else {
      t.omitted++;
      this.stats.spansNotInTree++;
    }
    this.traces.set(traceId, t);
    this.arm();
  }

  /** Prints the trees of traces quiet since `quietMillis`. */
  tick(): void {
    const now = this.timers.now();
    for (const t of [...this.traces.values()]) {
      if (now - t.lastSeenMs < this.quietMillis) break; // ordered by last activity
      this.traces.delete(t.traceId);
      this.printTree(t);
    }
  }

  /** Prints every held trace now (shutdown). */
  flush(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of [...this.traces.values()]) this.printTree(t);
    this.traces.clear();
  }

  get heldTraces(): number {
    return this.traces.size;
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.tick();
      if (this.traces.size > 0) this.arm();
    }, Math.max(50, Math.floor(this.quietMillis / 2)));
  }

  private printTree(t: PendingTrace): void {
    // A trace of one span is already fully shown by its line.
    if (t.spans.length + t.omitted < 2) return;
    this.stats.treesPrinted++;
    for (const line of formatTraceTree(t.traceId, t.spans, t.omitted)) this.opts.write(line);
  }
}

const KIND: Record<number, string> = {
  [SpanKind.INTERNAL]: 'INTERNAL',
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

export function serviceOf(span: ReadableSpan): string {
  return serviceName(span.resource);
}

function serviceName(resource: Resource): string {
  const v = resource.attributes['service.name'];
  return typeof v === 'string' ? v : 'unknown_service';
}

/** Milliseconds with 3 decimals, from nanoseconds (exact, no float rounding). */
export function formatDuration(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  const ms = a / 1_000_000n;
  const frac = ((a % 1_000_000n) / 1000n).toString().padStart(3, '0');
  return `${neg ? '-' : ''}${ms}.${frac}ms`;
}

function statusText(span: ReadableSpan): string {
  if (span.status.code !== SpanStatusCode.ERROR) return 'OK';
  return span.status.message ? `ERROR ${span.status.message}` : 'ERROR';
}

/** UTC time of day with milliseconds, e.g. 12:03:04.512Z. */
function timeOfDay(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString().slice(11);
}

export function formatSpanLine(span: ReadableSpan): string {
  const start = hrTimeToNs(span.startTime);
  const dur = hrTimeToNs(span.endTime) - start;
  const ctx = span.spanContext();
  return [
    timeOfDay(start),
    serviceOf(span),
    KIND[span.kind] ?? String(span.kind),
    span.name,
    statusText(span),
    formatDuration(dur),
    `trace=${ctx.traceId.slice(0, 8)} span=${ctx.spanId.slice(0, 8)}`,
  ].join('  ');
}

/** The lines of a trace tree (see the header for the shape). */
export function formatTraceTree(traceId: string, spans: readonly ReadableSpan[], omitted = 0): string[] {
  const byId = new Map<string, ReadableSpan>();
  for (const s of spans) byId.set(s.spanContext().spanId, s);
  const children = new Map<string, ReadableSpan[]>();
  const roots: ReadableSpan[] = [];
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    if (parent !== undefined && parent !== s.spanContext().spanId && byId.has(parent)) {
      let list = children.get(parent);
      if (!list) children.set(parent, (list = []));
      list.push(s);
    } else roots.push(s);
  }
  const byStart = (a: ReadableSpan, b: ReadableSpan) => {
    const d = hrTimeToNs(a.startTime) - hrTimeToNs(b.startTime);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
  roots.sort(byStart);
  for (const list of children.values()) list.sort(byStart);

  let first = hrTimeToNs(spans[0]!.startTime);
  let last = hrTimeToNs(spans[0]!.endTime);
  for (const s of spans) {
    const a = hrTimeToNs(s.startTime);
    const b = hrTimeToNs(s.endTime);
    if (a < first) first = a;
    if (b > last) last = b;
  }
  const total = spans.length + omitted;
  const lines = [`trace ${traceId}  ${total} spans  ${formatDuration(last - first)}${omitted > 0 ? `  (${omitted} spans not shown)` : ''}`];
  const seen = new Set<ReadableSpan>();
  const walk = (s: ReadableSpan, prefix: string, lastChild: boolean) => {
    if (seen.has(s)) return; // a cycle in bad input: print each span once
    seen.add(s);
    const dur = hrTimeToNs(s.endTime) - hrTimeToNs(s.startTime);
    const status = s.status.code === SpanStatusCode.ERROR ? `  ${statusText(s)}` : '';
    lines.push(`${prefix}${lastChild ? '└─ ' : '├─ '}${KIND[s.kind] ?? s.kind} ${serviceOf(s)} ${s.name}  ${formatDuration(dur)}${status}`);
    const kids = children.get(s.spanContext().spanId) ?? [];
    kids.forEach((k, i) => walk(k, prefix + (lastChild ? '   ' : '│  '), i === kids.length - 1));
  };
  roots.forEach((r, i) => walk(r, '', i === roots.length - 1));
  // Spans only reachable through a cycle.
  for (const s of spans) if (!seen.has(s)) walk(s, '', true);
  return lines;
}

// ---------------------------------------------------------------- logs

/** A value on one line: plain strings as they are, others (and strings with spaces, quotes or control characters) as JSON, bytes as hex. */
function logValueText(v: LogValue): string {
  if (typeof v === 'string' && !/[\s"=\u0000-\u001f]/.test(v) && v !== '') return v;
  // The holder's own value: a Buffer's toJSON has already turned `x` into an object.
  return (
    JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
      const raw = this[k];
      return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex') : x;
    }) ?? 'null'
  );
}

/** One line for a log record that happened at `wallNs`. */
export function formatLogLine(log: LogRecord, resource: Resource, wallNs: bigint): string {
  const parts = [timeOfDay(wallNs), serviceName(resource), log.severity];
  if (log.eventName) parts.push(log.eventName);
  if (log.body !== undefined) parts.push(logValueText(log.body));
  for (const [k, v] of Object.entries(log.attributes ?? {})) parts.push(`${k}=${logValueText(v)}`);
  if (log.traceId !== undefined) parts.push(`trace=${log.traceId.slice(0, 8)}${log.spanId !== undefined ? ` span=${log.spanId.slice(0, 8)}` : ''}`);
  return parts.join('  ');
}
