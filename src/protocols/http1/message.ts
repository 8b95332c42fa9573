// One HTTP/1.x message as one direction's parser saw it: the parts of the head
// the records need (copied out of llhttp's spans), body bytes counted (never
// copied) and the times of its first and last bytes.

/** How the body of a message is delimited (RFC 9112 §6.3), as far as gap handling cares. */
export type Http1BodyKind =
  /** No body. */
  | 'none'
  /** Content-Length: a gap that the remaining length covers can be stepped over. */
  | 'length'
  /** Delimited by the end of the connection: any gap can be stepped over. */
  | 'eof'
  /** Chunked (or another transfer coding): a gap loses the framing. */
  | 'coded';

/**
 * Why a request was not parsed to its end (it may still become a record):
 * llhttp rejected its bytes, it went past the agent's head bounds, or bytes
 * of it were not captured (the per-syscall capture cap, lost events).
 */
export type Http1Incomplete = 'malformed' | 'too_large' | 'not_captured';

/** Activity of a direction: when its last bytes moved (chunks, skipped chunks, gaps). */
export interface Http1Activity {
  readonly startNs: number;
  readonly endNs: number;
}

export const NO_ACTIVITY: Http1Activity = { startNs: -Infinity, endNs: -Infinity };

/** The lines of a kept header that no line carried (shared and frozen: a header's first line replaces it). */
export const NO_LINES: readonly string[] = Object.freeze([]);

export class Http1Message {
  /** 0, 1, ...: valid messages begun on this direction (requests: the record's sequence). */
  index = -1;
  /** startNs of the chunk holding the first byte. */
  readonly startNs: number;
  /** The direction's last activity before this message's first byte. */
  readonly before: Http1Activity;
  /** endNs of the chunk (or gap) holding the latest byte so far. */
  lastByteNs: number;
  /** Stream position of the first byte (requests). */
  pos = -1;
  /** Thread of the syscall that completed the head (0 when unknown). */
  tid = 0;

  // Request line / status line.
  method = '';
  /** The request-target as sent; undefined when longer than what is kept. */
  target: string | undefined = '';
  statusCode = 0;
  version = '';

  // Header values kept (only what records use), each as every line that carried it.
  // NO_LINES until the first line: most messages lack most of these headers,
  // and an empty array grows a 17-slot store at its first push.
  host: readonly string[] = NO_LINES;
  userAgent: readonly string[] = NO_LINES;
  traceparent: readonly string[] = NO_LINES;
  tracestate: readonly string[] = NO_LINES;
  /** Upgrade: the protocols a request offers (RFC 9110 §7.8); the handoff takes the one a 101 agrees to. */
  upgradeTo: readonly string[] = NO_LINES;
  contentLength: string | undefined;
  transferEncoding = false;
  /** Kept headers that had a value too long (or too many lines) to keep: not usable at all. */
  overlong: string[] | undefined;
  /**
   * Values of captured headers, by capture index (see header-names.ts): every
   * line in order, or null when a line could not be kept (the header is then
   * not recorded at all). Allocated at the first captured header.
   */
  captured: (string[] | null | undefined)[] | undefined;
  /** Lines of captured headers met in this head (kept or not): the per-message bound. */
  capturedLines = 0;

  headersDone = false;
  /** The request-target ended (the request line went on past it): a target cut before is never used. */
  targetDone = false;
  /** Set when the message was given up before its end (requests: kept for a record when it can be paired). */
  incomplete: Http1Incomplete | undefined;
  /** llhttp's upgrade flag: Upgrade + Connection: upgrade, or CONNECT. */
  upgrade = false;
  bodyKind: Http1BodyKind = 'none';
  /** For 'length' bodies: bytes still to come. */
  remaining = 0;
  /** Body bytes (payload after transfer decoding), including bytes stepped over in gaps. */
  bodyBytes = 0;
  complete = false;

  constructor(startNs: number, before: Http1Activity) {
    this.startNs = startNs;
    this.before = before;
    this.lastByteNs = startNs;
  }

  /** Bytes of kept strings (for bufferedBytes()). */
  keptBytes(): number {
    // Once per request (the stitcher's byte bound): no allocation.
    let n = (this.target?.length ?? 0) + this.method.length + (this.contentLength?.length ?? 0);
    n += lengths(this.host) + lengths(this.userAgent) + lengths(this.traceparent) + lengths(this.tracestate);
    const captured = this.captured;
    if (captured !== undefined) for (let i = 0; i < captured.length; i++) n += lengths(captured[i]);
    return n;
  }
}

function lengths(list: readonly string[] | null | undefined): number {
  let n = 0;
  if (list) for (let i = 0; i < list.length; i++) n += list[i]!.length;
  return n;
}
