// The one contract every protocol implements, and the one record type all
// protocols produce. Nothing outside src/protocols/<id>/ knows a protocol's
// bytes; nothing in src/protocols/ knows OpenTelemetry, the clock or I/O.
//
// Flow per connection (driven by src/correlate/):
//   1. detect(): look at the first bytes of each direction until a protocol
//      says `match` (with which direction carries requests) or all say `no`.
//   2. createSession(): one ProtocolSession per connection. The correlate
//      layer feeds it contiguous chunks of each direction in stream order,
//      tells it about gaps (bytes moved but not captured, or lost), and
//      collects the L7 records it emits.
//   3. close() / expire(): flush what the connection ends or a timeout ends.

/** Which way bytes moved, seen from the traced process. */
export type Side = 'egress' | 'ingress';

/** Which end of the call the traced process is. */
export type CallKind = 'server' | 'client';

export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;
/** Span attributes may also hold string arrays (header values); metric attributes never do. */
export type SpanAttributes = Record<string, AttributeValue | string[]>;

/** What the correlate layer knows of a connection; protocols use it for attributes. */
export interface ConnectionInfo {
  /** Unique per agent run. */
  readonly connId: number;
  readonly tgid: number;
  readonly role: 'client' | 'server' | 'unknown';
  /** true when the agent saw the connection start (connect/accept), false when it joined mid-stream. */
  readonly sawStart: boolean;
  /** true once its bytes are the plaintext of a TLS library (the ciphertext is never parsed). */
  readonly encrypted: boolean;
  readonly transport: 'tcp' | 'udp';
  readonly localAddr: string;
  readonly localPort: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
}

/** A contiguous run of captured bytes from one syscall, in stream order. */
export interface Chunk {
  readonly side: Side;
  /** The bytes; valid only during the call (copy what you keep). */
  readonly data: Buffer;
  /** Offset of data[0] in this side's stream. */
  readonly pos: number;
  /** When the first byte moved (CLOCK_MONOTONIC ns): syscall entry for egress, exit for ingress. */
  readonly startNs: number;
  /** When the last byte moved: syscall exit. */
  readonly endNs: number;
  /** data begins where a syscall began (a natural place for a message to start). */
  readonly syscallStart: boolean;
  /** Thread that made the syscall. */
  readonly tid?: number;
}

export type Detection =
  | { readonly result: 'no' }
  | { readonly result: 'more' }
  /** `requestSide`: the direction that carries requests (ingress for a server). */
  | { readonly result: 'match'; readonly requestSide: Side };

/** A histogram an L7 record contributes to, declared by the protocol (semconv names). */
export interface InstrumentSpec {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
  /** Explicit bucket boundaries. */
  readonly boundaries: readonly number[];
  /** Attribute sets per process before the overflow series (default: the agent-wide bound). */
  readonly maxSeries?: number;
}

export interface RecordMeasurement {
  readonly instrument: InstrumentSpec;
  readonly value: number;
  /** Bounded-cardinality attributes only (never a raw path or id). */
  readonly attributes: Attributes;
}

/** W3C trace context a message carried (traceparent/tracestate), already validated. */
export interface CarriedTraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState?: string;
}

/**
 * The one record type: one request and its response (or the lack of one), as
 * the traced process saw it. Everything above the protocols consumes this.
 */
export interface L7Record {
  readonly protocol: string;
  readonly kind: CallKind;
  readonly connId: number;
  readonly tgid: number;
  /** First byte of the request (CLOCK_MONOTONIC ns). */
  readonly startNs: number;
  /** Last byte of the response; for a record without response, when it was given up. */
  readonly endNs: number;
  /** Span name per the protocol's semantic conventions. */
  readonly name: string;
  /** Span attributes per the protocol's semantic conventions. */
  readonly attributes: SpanAttributes;
  /** 'error' per the conventions (for HTTP: 5xx on servers, 4xx/5xx on clients, no response). */
  readonly status: 'unset' | 'error';
  readonly statusMessage?: string;
  /** Low-cardinality error class (semconv error.type), when status is error. */
  readonly errorType?: string;
  /** Context the request carried: the server span joins that trace as its child; a client span takes these ids. */
  readonly traceContext?: CarriedTraceContext;
  /** Position of the request on the connection (0, 1, ...): later issues pair both ends by it. */
  readonly sequence: number;
  readonly measurements: readonly RecordMeasurement[];
}

/**
 * Counters a protocol session reports, summed by the tracker and exported as
 * the agent's own metrics `ebpf_otel.protocol.<name>` per protocol. Every
 * protocol keeps the common ones; a protocol declares the rest
 * (`ProtocolDefinition.counters`) and keeps them in the same object.
 */
export interface ProtocolStats {
  /** Records emitted. */
  records: number;
  /** Malformed input: the parser hit an error and resynced. */
  parseErrors: number;
  /** Responses dropped because no request could be paired with them for certain. */
  unpairedResponses: number;
  /** Requests given up (timeout or close) without a response. */
  requestsWithoutResponse: number;
  /** Bytes skipped while looking for a message boundary (mid-stream, after an error or gap). */
  bytesSkipped: number;
  /** A protocol's own counters, by the `field` of their ProtocolCounter. */
  [counter: string]: number;
}

/** A counter of a protocol's sessions, exported as `ebpf_otel.protocol.<name>` with `ebpf_otel.protocol=<id>`. */
export interface ProtocolCounter {
  /** Key in ProtocolStats. */
  readonly field: string;
  /** Metric name after `ebpf_otel.protocol.` (snake_case). */
  readonly name: string;
  /** UCUM unit or {annotation}. */
  readonly unit: string;
  readonly description: string;
}

/** The counters every protocol keeps; `records` and `parse_errors` as they always were. */
export const COMMON_PROTOCOL_COUNTERS: readonly ProtocolCounter[] = [
  { field: 'parseErrors', name: 'parse_errors', unit: '{error}', description: 'Malformed messages met by protocol parsers, per protocol.' },
  { field: 'unpairedResponses', name: 'unpaired_responses', unit: '{response}', description: 'Responses left out because no request could be paired with them for certain, per protocol.' },
  { field: 'requestsWithoutResponse', name: 'requests_without_response', unit: '{request}', description: 'Requests given up (timeout, close) without a response, per protocol.' },
  { field: 'bytesSkipped', name: 'skipped_bytes', unit: 'By', description: 'Bytes skipped while looking for a message boundary (mid-stream attach, after an error or gap), per protocol.' },
];

/** Zeroed stats with the common counters and `own` (a protocol's declared counters). */
export function newProtocolStats(own: readonly ProtocolCounter[] = []): ProtocolStats {
  const s: ProtocolStats = { records: 0, parseErrors: 0, unpairedResponses: 0, requestsWithoutResponse: 0, bytesSkipped: 0 };
  for (const c of own) s[c.field] = 0;
  return s;
}

/** Adds every counter of `s` to `acc`. */
export function addProtocolStats(acc: ProtocolStats, s: ProtocolStats): void {
  for (const k in s) acc[k] = (acc[k] ?? 0) + s[k]!;
}

/** Per-connection protocol state. Pure: no clock (times come in), no I/O. */
export interface ProtocolSession {
  /** Contiguous bytes of one side, in stream order. Emit finished records into `out`. */
  onChunk(chunk: Chunk, out: L7Record[]): void;
  /**
   * `bytes` of `side` moved but were not captured (truncated payload, lost
   * event), starting at `pos`. The session must not guess what they were.
   */
  onGap(side: Side, pos: number, bytes: number, atNs: number, out: L7Record[]): void;
  /** Requests still waiting at `nowNs` for longer than `timeoutNs` are given up as errors. */
  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void;
  /** The connection ended at `atNs`: emit what can still be emitted, then free everything. */
  close(atNs: number, out: L7Record[]): void;
  /**
   * The agent stops following the connection without knowing how it ended
   * (evicted by a bound): free everything, emit nothing, report nothing.
   */
  dispose(): void;
  /** Bytes buffered by this session (for the agent's memory bound). */
  bufferedBytes(): number;
  readonly stats: ProtocolStats;
}

/** A request head was parsed: the trace graph decides the request's ids now. */
export interface RequestStarted {
  /** The request's `sequence` (the same number its L7Record will carry). */
  readonly sequence: number;
  /** Stream position of the request's first byte on the request side. */
  readonly pos: number;
  /** When its first byte moved. */
  readonly startNs: number;
  /** Thread that moved the chunk completing the head (it read or wrote the request). */
  readonly tid: number;
  readonly traceContext?: CarriedTraceContext;
  /**
   * An id both ends of the connection give this request on the wire (HTTP/2:
   * the stream id), an integer >= 1, valid whether or not the agent saw the
   * connection start. Absent: the two ends are matched by `pos`, which needs
   * both ends seen from the start.
   */
  readonly peerId?: number;
}

/**
 * What a session tells the correlate layer while it parses, so ids can be
 * given when a request starts rather than when its record ends. Every
 * started request ends in exactly one record or one `requestAbandoned`.
 * The two ends of one connection are paired by `peerId` when the protocol
 * names its requests on the wire, else by `pos`.
 */
export interface SessionObserver {
  requestStarted(r: RequestStarted): void;
  /** The request will never become a record (dropped by a resync): forget it. */
  requestAbandoned(sequence: number, atNs: number): void;
  /**
   * The connection switched protocols (an HTTP/1.1 Upgrade answered 101,
   * a CONNECT tunnel): from `from` on, its bytes are no longer this
   * session's. The correlate layer ends the session after the current chunk
   * and hands the connection to the protocol that claims `upgrade`, if one
   * is enabled, else stops reading it.
   */
  protocolSwitched?(s: ProtocolSwitch): void;
}

/** Where a connection's bytes stop being one protocol's and what the next one is. */
export interface ProtocolSwitch {
  /** The protocol token the peers agreed on (Upgrade: h2c -> 'h2c'), lower case; undefined when the wire did not say. */
  readonly upgrade: string | undefined;
  /**
   * Stream position on each side from which the bytes are the next
   * protocol's; undefined where the session lost track (bytes it held were
   * over its bound): the connection is then not handed on.
   */
  readonly from: Readonly<Record<Side, number | undefined>>;
  /**
   * Bytes at or past `from` the session already took (an upgrade request's
   * side keeps sending before the answer), in stream order: replayed to the
   * next protocol. Copies: the session no longer owns them.
   */
  readonly held: readonly Chunk[];
}

/** Credentials travel in these: their values are dropped unless the user removes them from the list. */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];

/** What the agent gives every protocol, whatever its own options. */
export interface CommonProtocolOptions {
  /** Header (or field) names whose values are never recorded (lower-case); DEFAULT_REDACTED_HEADERS when undefined. */
  readonly redactHeaders?: readonly string[];
  /** Upper bound of what one session may buffer before it gives up on a message. */
  readonly maxBufferedBytes?: number;
}

/**
 * A protocol's configuration: its section of the configuration file, the
 * flags that override it, and how both become the options its sessions take.
 * Validated by the one schema (src/config/schema.ts), documented in the
 * generated settings table and checked against the example file, without an
 * edit outside the protocol's folder.
 */
export interface ProtocolConfig<O> {
  /** Key of its section in the file (`http` for HTTP/1). */
  readonly section: string;
  /** The section's settings (src/config/setting.ts), flags named in them. */
  readonly settings: SettingsSection;
  /** The flags' definitions for node:util parseArgs (names without `--`). */
  readonly flags?: Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean }>>;
  /** Lines of `run --help`, under "protocols:". */
  readonly usage?: readonly string[];
  /**
   * Options from the file's section (already validated; undefined without
   * one), the environment variables its settings name, and the flags'
   * values (flags win, then variables, then the file). Throws a UsageError
   * for a bad flag or variable.
   */
  resolve(file: unknown, flags: Readonly<Record<string, unknown>>, common: CommonProtocolOptions, env: Readonly<Record<string, string | undefined>>): O;
  /**
   * Checks across its settings and the redaction list, after each value was
   * validated: `problem` takes a key relative to the section (and the index
   * of a list item) and refuses the file with the message.
   */
  check?(
    file: unknown,
    redacted: { readonly names: readonly string[]; readonly fromFile: boolean },
    problem: (key: string, index: number | undefined, message: string) => void,
  ): void;
}

/** The settings of a section, opaque here (src/config/setting.ts defines them): protocols stay free of the loader. */
export interface SettingsSection {
  readonly [key: string]: unknown;
}

export interface ProtocolDefinition<O extends CommonProtocolOptions = CommonProtocolOptions> {
  /** Folder name under src/protocols/ and the value of a record's `protocol`. */
  readonly id: string;
  /** The `network.protocol.name` of its connections (flow metrics), e.g. 'http'. */
  readonly networkProtocolName: string;
  /**
   * Looks at the first bytes of one side (`data` starts a syscall). `more`
   * only when a few more bytes could decide; after `maxDetectBytes` the
   * correlate layer treats `more` as `no`.
   */
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection;
  readonly maxDetectBytes: number;
  /** Protocol tokens another protocol may switch a connection to this one with (HTTP/1.1 Upgrade: `h2c`). */
  readonly upgradeTokens?: readonly string[];
  /** Its own counters, kept in its sessions' stats beside the common ones. */
  readonly counters?: readonly ProtocolCounter[];
  /** Every histogram its records may carry (dashboards and checks list them from here); none when it makes no records. */
  readonly instruments: readonly InstrumentSpec[];
  /** Its configuration; without one it takes the common options only. */
  readonly config?: ProtocolConfig<O>;
  createSession(conn: ConnectionInfo, requestSide: Side, options: O, observer?: SessionObserver): ProtocolSession;
  /**
   * Throws, with a message for the user, when something the protocol loads
   * from outside this repository is not what it was built against. Called
   * when the agent selects its protocols (protocolsById), before any traffic.
   */
  selfCheck?(): void;
}
