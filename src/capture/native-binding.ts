// The native addon (native/, built by `make native` into
// native/build/Release/ebpf_otel.node): its exact TypeScript shape and the one
// function that loads it.
//
// The addon is thin on purpose. It checks types and the ranges that protect
// native memory, nothing more: defaults, option validation and ergonomics
// belong to the TypeScript layer above it, which takes a NativeBinding so
// tests can hand it a fake.
//
// Threads: every call below runs on the JS thread. After start(), a native
// thread drains the kernel ring buffer and hands batches to `onBatch` through
// a bounded queue (maxPendingBatches); when the queue is full the batch is
// dropped and counted, and the thread keeps draining, so a slow JS side never
// stalls the kernel side.
//
// Errors: every error thrown has `code` and `op` (see NativeError).

import * as fs from 'node:fs';
import * as path from 'node:path';

/** Load-time configuration: `struct agent_config` in bpf/socket_trace.h. */
export interface AgentConfig {
  /** Never traced (normally process.pid, a pid of the agent's namespace). u32. */
  agentTgid: number;
  /** Payload bytes captured per syscall, 0..MAX_PAYLOAD (16384). */
  captureBytes: number;
  /** Wake the poll thread once this much data waits; 0: every record. u32. */
  wakeupBytes: number;
  /** Trace every process but the agent. */
  selectAll: boolean;
  /** Follow UDP sockets too (TCP always). */
  captureUdp: boolean;
  /** A selected process's forked children are selected. */
  followForks: boolean;
  /** Report every exec, not only selected ones (glob selectors are matched in user space). */
  reportExecs: boolean;
  /**
   * The agent's pid namespace when it is not the initial one (see
   * pid-namespace.ts): the nsfs device as the kernel encodes a dev_t, and
   * the namespace's inode. Both 0n in the initial namespace. u64 each.
   */
  pidnsDev: bigint;
  pidnsIno: bigint;
  /** enum capture_mode of every new connection (0 full, 1 muted: byte counts only, no data events). */
  initialMode: number;
}

/** The syscalls group (bpf/syscall_latency.h): `struct syscall_config` and its maps. */
export interface SyscallLatencyConfig {
  /** Report calls at least this long as EV_SLOW_SYSCALL records; 0: none. */
  slowNs: number;
  /** Rate limit per CPU: credit one report costs, in ns (1e9 / reports per second); 0..1e9. */
  slowCostNs: number;
  /** rt_sigreturn's number: its return value is not an error code. */
  sigreturnNr: number;
  /** max_entries of syscall_hists (tgid, syscall, errno keys). 1..2^24. */
  maxHistograms: number;
  /** Syscall numbers (< SYSLAT_MAX_NR) whose first argument is a file descriptor. */
  fdSyscalls: readonly number[];
}

/**
 * Receives one batch: `records` framed records in one Buffer (see
 * BATCH_FRAME_HEADER_BYTES and forEachBatchRecord for the framing, documented
 * in native/batch_format.h). The Buffer wraps native memory without a copy;
 * it is freed when the Buffer is garbage collected, so keep slices of it only
 * as long as needed. A throw from the callback becomes an uncaught exception.
 */
export type BatchCallback = (batch: Buffer, records: number) => void;

/** All fields required: defaults are the TypeScript layer's business. */
export interface SocketTraceSessionOptions {
  config: AgentConfig;
  /** Program groups to load (bpf/socket_trace.h); programs of the others are not loaded. */
  groups: { sockets: boolean; syscalls: boolean; tcp: boolean; tls?: boolean; links?: boolean };
  /** TCP health: (process, role, peer) keys `tcp_peers` holds (1..2^20); the rest fold into one key per process. */
  tcpPeerEntries: number;
  /** The syscalls group's configuration (its maps exist whether or not it is loaded). */
  syscalls: SyscallLatencyConfig;
  /** Size of the `events` ring buffer: a power of two, a multiple of the page size, at most 2 GiB. */
  ringBufferBytes: number;
  /**
   * A batch is handed to JS when the next record would not fit in this many
   * bytes, or batchDelayMs after its first record, whichever comes first. A
   * record larger than this gets a batch of its own. 16..2^30.
   */
  batchBytes: number;
  /** Batches waiting for the JS thread before new ones are dropped. 1..2^20. */
  maxPendingBatches: number;
  /** Longest wait for ring-buffer data before a poll returns anyway. 1..3600000. */
  pollTimeoutMs: number;
  /**
   * Longest a batch is held for more records after its first one was taken
   * from the ring; 0: handed over at the end of every poll. The ring is
   * drained every poll either way. 0..3600000.
   */
  batchDelayMs: number;
  onBatch: BatchCallback;
}

/** A BPF program of the loaded object. */
export interface ProgramInfo {
  /** C function name, e.g. 'tp_sys_enter_read'. */
  name: string;
  /** ELF section, e.g. 'tracepoint/syscalls/sys_enter_read'. */
  section: string;
  /** libbpf's program type name: 'tracepoint', 'raw_tracepoint', 'kprobe' (uprobes too), 'tracing'... */
  type: string;
  /** attachAll() attaches it: its section names its target. */
  autoAttach: boolean;
  /** The kernel's program id, as `bpftool prog`/`bpftool link` show it. */
  id: number;
}

/** An attachment made by this session. */
export interface LinkInfo {
  /** Session-local id from 1 (not the kernel's link id); pass it to detach(). */
  id: number;
  program: string;
  /**
   * attachAll(): the section name ('tracepoint/syscalls/sys_enter_read');
   * attachTracepoint(): 'tracepoint/<category>/<name>';
   * attachUprobe(): 'uprobe:<binary>:<symbol or 0xoffset>[ pid <pid>]' ('uretprobe:' for return probes).
   */
  target: string;
}

export interface UprobeOptions {
  /** Only this process; default: every process that maps the binary. */
  pid?: number;
  /** Fire on return instead of entry. */
  retprobe?: boolean;
  /** What bpf_get_attach_cookie() returns in the program (a runtime's per-binary slot). */
  cookie?: number;
}

/** Attaching uprobes at run time (the tls feature): part of every SocketTraceSession. */
export type UprobeAccess = Pick<SocketTraceSession, 'attachUprobe' | 'detach' | 'links'> & Partial<Pick<SocketTraceSession, 'updateLinkMap'>>;

/** Counters. `kernel` is bigint (u64 sums); the others are numbers (exact below 2^53). */
export interface SessionStats {
  /** The `stats` map by `enum stat_index` (bpf/socket_trace.h), each summed over CPUs; length STAT__COUNT. */
  kernel: bigint[];
  /** Batches (and their records) passed to onBatch. */
  batchesDelivered: number;
  recordsDelivered: number;
  /**
   * Batches (and their records, and framed bytes) taken from the kernel but not
   * delivered: the JS queue was full, memory was short, or the session closed
   * with them in hand.
   */
  batchesDropped: number;
  recordsDropped: number;
  bytesDropped: number;
  /** Waits on the ring buffer that returned (with data or on timeout). */
  polls: number;
  /** Of the batches handed over, those that went because they were full (batchBytes), not because their time was up. */
  batchesFull: number;
  /** Batches written into a batch buffer kept for reuse instead of freshly allocated memory (native/ring_poller.h, BatchPool). */
  batchesReused: number;
  /** The poll thread is running (started and not stopped by an error). */
  running: boolean;
  /** Why the poll thread stopped on its own; null while it runs or before start(). */
  pollError: string | null;
}

/**
 * TCP health and flows: the kernel tables the network collector reads each
 * interval (records: tcp-health-layout.ts). Part of every SocketTraceSession.
 */
export interface TcpTableAccess {
  /**
   * Every key of `tcp_peers` and `tcp_peer_overflow` with its cumulative
   * counters, as `struct tcp_peer_record` one after the other
   * (layout.tcpPeerRecordBytes each). Empty when the tcp group is not loaded.
   */
  readTcpPeers(): Buffer;
  /** Every `conn_info` entry, as `struct conn_record` one after the other (layout.connRecordBytes each). */
  readConnections(): Buffer;
  /** Deletes the TCP health keys of these processes; returns how many keys went. */
  deleteTcpPeers(tgids: readonly number[]): number;
}

/**
 * Syscall latency: the `syscall_hists` table (records:
 * syscall-latency-layout.ts). Part of every SocketTraceSession.
 */
export interface SyscallHistogramAccess {
  /**
   * Every entry of `syscall_hists` as struct syscall_hist_record
   * (SyscallHistRecordLayout), back to back, in one new Buffer. Cumulative
   * values: nothing is reset (op 'lookup' on failure).
   */
  readSyscallHistograms(): Buffer;
  /**
   * Deletes the entries whose keys (struct syscall_hist_key, 12 bytes each,
   * back to back) are in `keys`; keys not there are skipped. Returns how
   * many were deleted.
   */
  deleteSyscallHistograms(keys: Buffer): number;
}

/**
 * One loaded socket_trace BPF object. Constructing it opens the embedded
 * object, sets `config` and the ring buffer size, and loads it into the
 * kernel; nothing is attached yet.
 *
 * Lifetime: close() is the one cleanup path (stop and join the poll thread,
 * discard batches still queued, detach every link, unload). It is idempotent
 * and also runs at Node environment teardown (process exit, worker exit) and
 * when the object is garbage collected. After close() every other method
 * throws ERR_SESSION_CLOSED. A started session keeps the process alive, like a
 * listening server, until close().
 */
export interface SocketTraceSession extends TcpTableAccess, SyscallHistogramAccess {
  /** The programs of the object, in object order. */
  programs(): ProgramInfo[];
  /**
   * Attaches every program with autoAttach, all or nothing: on a failure the
   * ones attached by this call are detached and the error names the program
   * (op 'attach'). Returns the program names. A second call throws EALREADY.
   */
  attachAll(): string[];
  /** Attaches `program` to tracepoint `category`/`name`; returns the link id. */
  attachTracepoint(program: string, category: string, name: string): number;
  /**
   * Attaches `program` (a uprobe program) to `binaryPath` at a symbol (string,
   * resolved by libbpf from the ELF symbols) or a file offset (number).
   * Returns the link id.
   */
  attachUprobe(program: string, binaryPath: string, symbolOrOffset: string | number, opts?: UprobeOptions): number;
  /** Detaches one link; throws ENOENT (op 'detach') for an unknown id. */
  detach(linkId: number): void;
  links(): LinkInfo[];
  /** Adds (on) or removes (off) a process (tgid > 0) in `selected_tgids`. */
  selectTgid(tgid: number, on: boolean): void;
  /** Adds or removes a cgroup id (cgroup v2 inode number) in `selected_cgroups`. */
  selectCgroup(cgroupId: bigint, on: boolean): void;
  /** Writes one element of a runtime-link map (maps named link_*, group "links"): key and value of the map's sizes. */
  updateLinkMap?(map: string, key: Buffer, value: Buffer): void;
  /**
   * Replaces the set of selected command names (`exec_names`). Each is 1..15
   * bytes of UTF-8 (the kernel's comm is cut at 15); longer names throw a
   * RangeError and nothing changes. Names kept across calls never stop matching.
   */
  setExecNames(names: string[]): void;
  /**
   * Asks the kernel to capture each connection of `connIds` in `mode` (enum
   * capture_mode: 0 full, 1 muted), in one call however many there are. A
   * request is keyed by the connection id, never by tgid and fd: it takes
   * effect at that connection's next I/O, and a reused fd (a new id) is never
   * affected. Ids the kernel no longer follows are harmless: their requests
   * age out of a bounded table. Returns how many requests were stored
   * (all of them); a failed store throws (op 'update') with `stored`, the
   * number stored before it, which do take effect.
   */
  setConnectionModes(connIds: readonly number[], mode: number): number;
  /** Starts the poll thread. Throws ERR_SESSION_STARTED if already started. */
  start(): void;
  stats(): SessionStats;
  /** Asks the poll thread to consume the ring and hand over the batch it holds, now (it does not wait). Before start(): nothing. */
  flush(): void;
  close(): void;
  readonly closed: boolean;
}

export interface SocketTraceSessionConstructor {
  new (options: SocketTraceSessionOptions): SocketTraceSession;
}

export type KernelFeatureName = 'btf' | 'ringbuf' | 'tracepoint' | 'rawTracepoint' | 'kprobe' | 'uprobe' | 'fentry';

/**
 * Each by a real probe: BTF from /sys/kernel/btf/vmlinux; ringbuf, tracepoint
 * and rawTracepoint by libbpf's map/program type probes (tracepoint also needs
 * the tracepoint PMU); kprobe and uprobe by the program type plus
 * /sys/bus/event_source/devices/{kprobe,uprobe}; fentry by loading and
 * attaching a minimal BPF_PROG_TYPE_TRACING program.
 */
export type NativeFeatures = Record<KernelFeatureName, boolean> & {
  /** Why, for each feature that is false. */
  reasons: Partial<Record<KernelFeatureName, string>>;
};

/** Sizes the addon was compiled with, to check TypeScript layouts against. */
export interface NativeLayout {
  batchFrameHeaderBytes: number;
  batchFrameAlign: number;
  /** STAT__COUNT */
  statCount: number;
  /** MAX_PAYLOAD */
  maxPayload: number;
  /** sizeof(struct data_event), payload excluded. */
  dataEventBytes: number;
  connEventBytes: number;
  procEventBytes: number;
  agentConfigBytes: number;
  /** sizeof(struct tcp_peer_record) */
  tcpPeerRecordBytes: number;
  /** sizeof(struct conn_record) */
  connRecordBytes: number;
  /** sizeof(struct syscall_hist_record) */
  syscallHistRecordBytes: number;
  /** sizeof(struct slow_syscall_event) */
  slowSyscallEventBytes: number;
}

export interface NativeBinding {
  SocketTraceSession: SocketTraceSessionConstructor;
  /**
   * Makes sure tracefs is mounted (needed to attach tracepoints): returns
   * /sys/kernel/tracing if its events/ is there, else mounts tracefs there,
   * else uses or mounts /sys/kernel/debug/tracing. Throws (op 'tracefs') if
   * none works.
   */
  ensureTracefs(): string;
  probeFeatures(): NativeFeatures;
  /** The libbpf the addon runs with, e.g. 'v1.1'. */
  libbpfVersion(): string;
  /**
   * Gives free memory back to the system: V8's LowMemoryNotification (full
   * GCs that shrink the heap and unmap pooled pages), then glibc's
   * malloc_trim(0). True if malloc_trim released something. Costs a few full
   * GCs on the JS thread: see src/agent/memory-release.ts for when.
   */
  releaseFreeMemory(): boolean;
  layout: NativeLayout;
}

/** Error codes the addon throws besides errno names ('EPERM', 'ENOENT', ...). */
export type NativeErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_SESSION_CLOSED'
  | 'ERR_SESSION_STARTED'
  | 'ERR_CONSTRUCT_CALL_REQUIRED';

/**
 * What the addon throws.
 * - Bad arguments: TypeError/RangeError, code ERR_INVALID_ARG_TYPE/VALUE, op = the method
 *   ('SocketTraceSession' for the constructor).
 * - Closed session: code ERR_SESSION_CLOSED, op = the method.
 * - libbpf or kernel failures: code = errno name, `errno`, op = the step ('open', 'load',
 *   'attach', 'detach', 'update', 'lookup', 'start', 'tracefs'), `libbpfLog` = libbpf's lines
 *   logged during the call (the last ones are also in the message).
 */
export interface NativeError extends Error {
  code: NativeErrorCode | string;
  op: string;
  errno?: number;
  libbpfLog?: string[];
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).code === 'string' && typeof (e as Partial<NativeError>).op === 'string';
}

// ---- Batch framing (native/batch_format.h) ----

/** Each frame: u32 length (LE), u32 reserved (0), `length` record bytes, zero padding to 8. */
export const BATCH_FRAME_HEADER_BYTES = 8;
export const BATCH_FRAME_ALIGN = 8;

/**
 * Calls `visit(offset, length)` for each record of a batch, where the record
 * is batch[offset, offset + length) and starts with its u32 type tag. Returns
 * the number of records. Throws if the framing is broken (it never is unless
 * the Buffer was altered).
 */
export function forEachBatchRecord(batch: Buffer, visit: (offset: number, length: number) => void): number {
  let pos = 0;
  let records = 0;
  while (pos < batch.length) {
    if (batch.length - pos < BATCH_FRAME_HEADER_BYTES) throw new Error(`batch framing: truncated header at ${pos}`);
    const length = batch.readUInt32LE(pos);
    const start = pos + BATCH_FRAME_HEADER_BYTES;
    const next = start + Math.ceil(length / BATCH_FRAME_ALIGN) * BATCH_FRAME_ALIGN;
    if (next > batch.length) throw new Error(`batch framing: record of ${length} bytes at ${pos} overruns the batch`);
    visit(start, length);
    records++;
    pos = next;
  }
  return records;
}

// ---- Loading ----

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'ebpf_otel.node');

/**
 * Where the addon is: $EBPF_OTEL_NATIVE_ADDON if set, else
 * native/build/Release/ebpf_otel.node under the repository root, found by
 * walking up from this file to the directory holding native/binding.gyp (so it
 * works from src/capture/ and from dist/src/capture/ alike).
 */
export function nativeBindingPath(): string {
  const override = process.env['EBPF_OTEL_NATIVE_ADDON'];
  if (override) return path.resolve(override);
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'native', 'binding.gyp'))) return path.join(dir, ADDON_RELATIVE);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Not inside the repository: assume the layout of dist/src/capture/.
  return path.resolve(__dirname, '..', '..', '..', ADDON_RELATIVE);
}

let loaded: NativeBinding | undefined;

/** The addon if something loaded it already (never loads it: fakes in tests stay fakes). */
export function loadedNativeBinding(): NativeBinding | undefined {
  return loaded;
}

/** Loads the addon once; later calls return the same binding. */
export function loadNativeBinding(): NativeBinding {
  if (loaded) return loaded;
  const file = nativeBindingPath();
  if (!fs.existsSync(file)) {
    throw new Error(`native addon not built: run make native (no ${file})`);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(file) as NativeBinding;
  } catch (e) {
    throw new Error(`cannot load the native addon ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return loaded;
}
