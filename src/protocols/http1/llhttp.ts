// llhttp (nodejs/llhttp) compiled to WebAssembly, as shipped by undici. This
// file is the only one that uses the wasm ABI (undici-llhttp.ts loads undici's
// files and checks them against it): the module is compiled once per process
// and one Instance is shared by every parser; a parser is an llhttp_t pointer
// in that instance's memory.
//
// ABI (undici's llhttp build, see node_modules/undici/lib/dispatcher/client-h1.js):
//   exports: llhttp_alloc(type) -> ptr, llhttp_free(ptr), llhttp_execute(ptr, buf, len) -> errno,
//            llhttp_finish(ptr) -> errno, llhttp_reset(ptr), llhttp_resume_after_upgrade(ptr),
//            llhttp_get_error_pos(ptr) -> buf ptr, llhttp_get_method / _http_major / _http_minor,
//            malloc(n), free(ptr), memory.
//   imports (env): wasm_on_message_begin(p), wasm_on_url(p, at, len), wasm_on_status(p, at, len),
//            wasm_on_header_field(p, at, len), wasm_on_header_value(p, at, len),
//            wasm_on_headers_complete(p, status, upgrade, keepAlive), wasm_on_body(p, at, len),
//            wasm_on_message_complete(p). A non-zero return from a callback stops execute with
//            an error; on_headers_complete may return 1 (no body: HEAD, 1xx) or 2 (no body, then
//            pause as an upgrade: CONNECT 2xx).
//
// JavaScript stays off the per-byte path: input is copied into wasm memory once
// (a native memcpy), llhttp walks it, and JS only sees the callback spans. Header
// spans are read as strings by the handler if it wants them; body spans are only
// counted.

import { LLHTTP_ERROR, LLHTTP_TYPE, loadUndiciLlhttp, WebAssembly, type UndiciLlhttp } from './undici-llhttp';

export { LLHTTP_ERROR };

let undici: UndiciLlhttp | Error | undefined;
/**
 * undici's llhttp files, loaded and checked once (undici-llhttp.ts); throws
 * the check's UndiciLlhttpError, on every call, when they are not the
 * expected ones. The agent calls it at start (http1Protocol.selfCheck) so a
 * mismatch stops it there rather than at the first HTTP connection.
 */
export function checkedLlhttp(): UndiciLlhttp {
  if (undici === undefined) {
    try {
      undici = loadUndiciLlhttp();
    } catch (err) {
      undici = err as Error;
    }
  }
  if (undici instanceof Error) throw undici;
  return undici;
}

/** Callbacks of one parser; return 0 to go on, non-zero to stop with an error. */
export interface LlhttpHandler {
  onMessageBegin(): number;
  /** A span of the request target (may come in several pieces). */
  onUrl(at: number, len: number): number;
  /** A span of the reason phrase. */
  onStatus(at: number, len: number): number;
  onHeaderField(at: number, len: number): number;
  onHeaderValue(at: number, len: number): number;
  /** 0: body per framing; 1: no body; 2: no body and stop as an upgrade; -1: error. */
  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): number;
  onBody(len: number): number;
  onMessageComplete(): number;
  /**
   * One execute() piece is done: the input buffer is about to be reused, so
   * spans the handler kept as addresses must be copied out now.
   */
  onPieceEnd?(): void;
}

interface LlhttpExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  malloc(n: number): number;
  free(p: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_execute(p: number, buf: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_reset(p: number): void;
  llhttp_resume_after_upgrade(p: number): void;
  llhttp_get_error_pos(p: number): number;
  llhttp_get_method(p: number): number;
  llhttp_get_http_major(p: number): number;
  llhttp_get_http_minor(p: number): number;
}

/** The biggest piece handed to llhttp at once (bounds the shared input buffer). */
const MAX_SLICE = 64 * 1024;

/** The shared instance: memory, the input buffer and the parser currently executing. */
class LlhttpRuntime {
  readonly exports: LlhttpExports;
  /** Method names by llhttp's method number. */
  readonly methodNames: readonly string[];
  private inputPtr = 0;
  private inputSize = 0;
  private zerosPtr = 0;
  /** The parser inside llhttp_execute/finish (execution is synchronous and never nested). */
  current: LlhttpParser | null = null;
  private view: (Buffer & LatinSlicer) | undefined;

  constructor() {
    const llhttp = checkedLlhttp();
    this.methodNames = llhttp.methodNames;
    const instance = new WebAssembly.Instance(llhttp.module, {
      env: {
        wasm_on_message_begin: (p: number) => this.route(p).handler.onMessageBegin(),
        wasm_on_url: (p: number, at: number, len: number) => this.route(p).handler.onUrl(at, len),
        wasm_on_status: (p: number, at: number, len: number) => this.route(p).handler.onStatus(at, len),
        wasm_on_header_field: (p: number, at: number, len: number) => this.route(p).handler.onHeaderField(at, len),
        wasm_on_header_value: (p: number, at: number, len: number) => this.route(p).handler.onHeaderValue(at, len),
        wasm_on_headers_complete: (p: number, status: number, upgrade: number, keepAlive: number) =>
          this.route(p).handler.onHeadersComplete(status, upgrade === 1, keepAlive === 1),
        wasm_on_body: (p: number, _at: number, len: number) => this.route(p).handler.onBody(len),
        wasm_on_message_complete: (p: number) => this.route(p).handler.onMessageComplete(),
      },
    });
    this.exports = instance.exports as unknown as LlhttpExports;
  }

  private route(p: number): LlhttpParser {
    const c = this.current;
    if (c === null || c.ptr !== p) throw new Error(`llhttp callback for parser ${p} outside its execute`);
    return c;
  }

  /** Latin-1 text of wasm memory [at, at+len) (header spans only). */
  text(at: number, len: number): string {
    // latin1Slice is what toString('latin1', ...) ends in, without its per-call encoding lookup.
    return this.memory().latin1Slice(at, at + len);
  }

  /**
   * Whether wasm memory [at, at+name.length) is `name` (lower case) with its
   * letters in any case. Only letters fold: OR-ing 0x20 into any byte would
   * also take '^' for '~' and never match '_'.
   */
  equalsToken(at: number, name: Uint8Array): boolean {
    const m = this.memory();
    for (let i = 0; i < name.length; i++) {
      const b = m[at + i]!;
      const c = name[i]!;
      if (b !== c && !(c >= 0x61 && c <= 0x7a && b === c - 0x20)) return false;
    }
    return true;
  }

  /**
   * A view of all of wasm memory, made again only when memory grew: growing
   * detaches the old ArrayBuffer, which leaves the old view empty, so an
   * empty view is the cue (memory is never empty) and no call reaches into
   * the instance for its buffer.
   */
  private memory(): Buffer & LatinSlicer {
    const v = this.view;
    if (v !== undefined && v.length !== 0) return v;
    return (this.view = Buffer.from(this.exports.memory.buffer) as Buffer & LatinSlicer);
  }

  /** Copies `data` into the shared input buffer and returns its address. */
  load(data: Uint8Array): number {
    if (data.length > this.inputSize) {
      if (this.inputPtr !== 0) this.exports.free(this.inputPtr);
      this.inputSize = Math.max(4096, Math.ceil(data.length / 4096) * 4096);
      this.inputPtr = this.exports.malloc(this.inputSize);
      if (this.inputPtr === 0) throw new Error('llhttp: out of wasm memory');
    }
    this.memory().set(data, this.inputPtr);
    return this.inputPtr;
  }

  /** A MAX_SLICE run of zero bytes in wasm memory (to step over bytes that were not captured). */
  zeros(): number {
    if (this.zerosPtr === 0) {
      this.zerosPtr = this.exports.malloc(MAX_SLICE);
      if (this.zerosPtr === 0) throw new Error('llhttp: out of wasm memory');
      new Uint8Array(this.exports.memory.buffer, this.zerosPtr, MAX_SLICE).fill(0);
    }
    return this.zerosPtr;
  }
}

const VERSION_1: readonly (string | undefined)[] = ['1.0', '1.1'];

/** Buffer's latin1 decoder (present on every Buffer; not in @types/node). */
interface LatinSlicer {
  latin1Slice(start: number, end: number): string;
}

let runtime: LlhttpRuntime | undefined;
function rt(): LlhttpRuntime {
  return (runtime ??= new LlhttpRuntime());
}

/** Frees parsers whose owner was collected without calling free() (an evicted connection). */
const orphans = new FinalizationRegistry<number>((ptr) => rt().exports.llhttp_free(ptr));

/** One llhttp parser: one direction of one connection. */
export class LlhttpParser {
  readonly ptr: number;
  private freed = false;
  /**
   * Set by a handler that stops parsing from a span callback: the address of
   * the byte that made it stop. llhttp would report the end of the span,
   * which depends on how the input was cut; this does not.
   */
  stopAddress: number | undefined;
  /** Address and offset (in the data given to execute) of the piece being executed. */
  private pieceBase = 0;
  private pieceOffset = 0;
  /** Bytes the last execute() or executeZeros() consumed before it stopped (all of them when OK). */
  consumed = 0;

  constructor(
    readonly kind: 'request' | 'response',
    readonly handler: LlhttpHandler,
  ) {
    const r = rt();
    this.ptr = r.exports.llhttp_alloc(kind === 'request' ? LLHTTP_TYPE.REQUEST : LLHTTP_TYPE.RESPONSE);
    if (this.ptr === 0) throw new Error('llhttp: out of wasm memory');
    orphans.register(this, this.ptr, this);
  }

  /**
   * Feeds bytes; stops at the first error or pause. Returns llhttp's errno;
   * `consumed` then says how many bytes it took (all of them when OK).
   */
  execute(data: Uint8Array): number {
    const r = rt();
    let done = 0;
    while (done < data.length) {
      // Most chunks are one piece: no subarray for them.
      const piece = done === 0 && data.length <= MAX_SLICE ? data : data.subarray(done, Math.min(data.length, done + MAX_SLICE));
      const base = r.load(piece);
      this.pieceBase = base;
      this.pieceOffset = done;
      const errno = this.run(base, piece.length);
      this.handler.onPieceEnd?.();
      if (errno !== LLHTTP_ERROR.OK) {
        this.consumed = done + (this.errorAddress() - base);
        return errno;
      }
      done += piece.length;
    }
    this.consumed = data.length;
    return LLHTTP_ERROR.OK;
  }

  /** Feeds `n` zero bytes (only ever inside a body whose framing covers them); errno and `consumed` as execute(). */
  executeZeros(n: number): number {
    const r = rt();
    const base = r.zeros();
    let done = 0;
    while (done < n) {
      const len = Math.min(MAX_SLICE, n - done);
      const errno = this.run(base, len);
      this.handler.onPieceEnd?.();
      if (errno !== LLHTTP_ERROR.OK) {
        this.consumed = done + (this.errorAddress() - base);
        return errno;
      }
      done += len;
    }
    this.consumed = n;
    return LLHTTP_ERROR.OK;
  }

  private errorAddress(): number {
    const at = this.stopAddress ?? rt().exports.llhttp_get_error_pos(this.ptr);
    this.stopAddress = undefined;
    return at;
  }

  private run(base: number, len: number): number {
    const r = rt();
    if (r.current !== null) throw new Error('llhttp: nested execute');
    r.current = this;
    try {
      return r.exports.llhttp_execute(this.ptr, base, len);
    } finally {
      r.current = null;
    }
  }

  /** End of stream: completes a message delimited by the close. */
  finish(): number {
    const r = rt();
    if (r.current !== null) throw new Error('llhttp: nested execute');
    r.current = this;
    try {
      return r.exports.llhttp_finish(this.ptr);
    } finally {
      r.current = null;
    }
  }

  /** Back to the start state (type and callbacks kept): the next byte must begin a message. */
  reset(): void {
    rt().exports.llhttp_reset(this.ptr);
  }

  resumeAfterUpgrade(): void {
    rt().exports.llhttp_resume_after_upgrade(this.ptr);
  }

  /** The method of the request being parsed (after the request line). */
  method(): string {
    const r = rt();
    return r.methodNames[r.exports.llhttp_get_method(this.ptr)] ?? '';
  }

  /** "1.0" / "1.1" (llhttp accepts only HTTP/0.9..1.1 request lines and status lines of HTTP/1.x or 0.9). */
  version(): string {
    const e = rt().exports;
    const major = e.llhttp_get_http_major(this.ptr);
    const minor = e.llhttp_get_http_minor(this.ptr);
    // The versions llhttp accepts, as constants: no string per message.
    return (major === 1 ? VERSION_1[minor] : major === 0 && minor === 9 ? '0.9' : undefined) ?? `${major}.${minor}`;
  }

  /** Offset in the data given to execute() of a callback's address. */
  offsetOf(address: number): number {
    return this.pieceOffset + (address - this.pieceBase);
  }

  /** Latin-1 text of a callback span. */
  text(at: number, len: number): string {
    return rt().text(at, len);
  }

  /** Whether a callback span is exactly `name` (lower case), ASCII letters compared case-insensitively. */
  spanIsToken(at: number, len: number, name: Uint8Array): boolean {
    return len === name.length && rt().equalsToken(at, name);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    orphans.unregister(this);
    rt().exports.llhttp_free(this.ptr);
  }
}
