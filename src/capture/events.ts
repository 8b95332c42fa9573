// Typed capture events: what the capture layer hands to the layers above.
// Monotonic timestamps are CLOCK_MONOTONIC nanoseconds as JS numbers: exact
// for the first 104 days of uptime, then rounded to a few nanoseconds.

export type ConnRole = 'client' | 'server' | 'unknown';
export type FlowDirection = 'egress' | 'ingress';
export type DataSourceName =
  | 'read'
  | 'write'
  | 'readv'
  | 'writev'
  | 'recvfrom'
  | 'sendto'
  | 'recvmsg'
  | 'sendmsg'
  | 'recvmmsg'
  | 'sendmmsg'
  /** Plaintext at a TLS library call (DATA_F_TLS): `pos` is in the
   * connection's plaintext stream, which starts at 0 with its first TLS event. */
  | 'tls';
export type OpenReason = 'connect' | 'accept' | 'existing';
export type CloseReason = 'close' | 'replaced' | 'exit';

export interface SocketTuple {
  /** Socket family: an AF_INET6 socket with an IPv4-mapped peer is still 'inet6'. */
  readonly family: 'inet' | 'inet6';
  readonly transport: 'tcp' | 'udp';
  /** Normalised: IPv4-mapped IPv6 addresses are written as IPv4. */
  readonly localAddr: string;
  readonly localPort: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
}

interface TaskFields {
  readonly tgid: number;
  readonly tid: number;
  readonly comm: string;
  readonly cgroupId: bigint;
}

export interface DataEvent extends TaskFields {
  readonly type: 'data';
  readonly fd: number;
  readonly connId: number;
  readonly tsEnterNs: number;
  readonly tsExitNs: number;
  /** Offset of the first byte in this direction's stream of the connection. */
  readonly pos: number;
  readonly netns: number;
  /** Bytes the syscall moved; `data.length` may be smaller (truncated). */
  readonly size: number;
  readonly dir: FlowDirection;
  readonly role: ConnRole;
  readonly source: DataSourceName;
  readonly truncated: boolean;
  readonly tuple: SocketTuple;
  /** A view into the batch (no copy): consumers that keep bytes copy them. */
  readonly data: Buffer;
}

export interface OpenEvent extends TaskFields {
  readonly type: 'open';
  readonly fd: number;
  readonly connId: number;
  readonly tsNs: number;
  readonly netns: number;
  readonly role: ConnRole;
  readonly reason: OpenReason;
  readonly tuple: SocketTuple;
}

export interface CloseEvent extends TaskFields {
  readonly type: 'close';
  readonly fd: number;
  readonly connId: number;
  readonly tsNs: number;
  readonly netns: number;
  readonly role: ConnRole;
  readonly reason: CloseReason;
  readonly tuple: SocketTuple;
  readonly bytesSent: number;
  readonly bytesRecv: number;
}

export interface ExecEvent {
  readonly type: 'exec';
  readonly tgid: number;
  readonly ppid: number;
  readonly tsNs: number;
  readonly cgroupId: bigint;
  readonly comm: string;
  /** The path given to execve, as far as the kernel record holds it. */
  readonly filename: string;
  /** The kernel selected it already (its name is in the exec-name set). */
  readonly selectedByKernel: boolean;
}

export interface ForkEvent {
  readonly type: 'fork';
  readonly tgid: number;
  readonly ppid: number;
  readonly tsNs: number;
  readonly cgroupId: bigint;
  readonly comm: string;
  readonly selectedByKernel: boolean;
}

export interface ExitEvent {
  readonly type: 'exit';
  readonly tgid: number;
  readonly ppid: number;
  readonly tsNs: number;
  readonly cgroupId: bigint;
  readonly comm: string;
  /** exit() status, when the process exited by itself. */
  readonly exitCode: number | undefined;
  /** The signal that terminated it, if one did. */
  readonly signal: number | undefined;
}

/** The runtimes that say which request a client connection works for (group "links"). */
export type LinkRule = 'nginx' | 'go' | 'node';

/**
 * A runtime's probe named the request a client connection works for
 * (struct link_event): 'set', the CLIENT requests this process starts next
 * on clientConnId are children of the SERVER request in flight now on
 * serverConnId; 'clear', of no request the runtime knows. A connection id
 * of 0: the fd named no followed TCP socket.
 */
export interface LinkEvent {
  readonly type: 'link';
  readonly tgid: number;
  readonly tid: number;
  readonly tsNs: number;
  readonly rule: LinkRule;
  readonly op: 'set' | 'clear';
  readonly serverConnId: number;
  readonly clientConnId: number;
  readonly serverRole: ConnRole;
  readonly clientRole: ConnRole;
  readonly serverFd: number;
  readonly clientFd: number;
  /** The runtime's own id of the request (nginx: its address), for logs. */
  readonly token: bigint;
}

export type ConnectionEvent = OpenEvent | CloseEvent;
export type ProcessEvent = ExecEvent | ForkEvent | ExitEvent;
export type CaptureEvent = DataEvent | ConnectionEvent | ProcessEvent | LinkEvent;

// The syscalls group's record (not a CaptureEvent: it has its own handler).
export type { FdTarget, SlowSyscallEvent } from './slow-syscall-event';
