// What the network collector hands to its consumers (OTel metrics, `top`):
// per interval, TCP health and flow increments per process and peer.

/**
 * Who a process talked to. Client role (it connected): the peer's address
 * and port. Server role (it accepted): the peer's address and the local
 * port it was reached on; the client's ephemeral port would make one series
 * per connection. Role unknown (the connection predates the agent): the
 * peer's address only, since which port is the service's is not known.
 * `overflow`: the peers of a process past the bound, folded into one.
 */
export interface Peer {
  readonly role: 'client' | 'server' | undefined;
  readonly address: string | undefined;
  readonly port: number | undefined;
  readonly overflow: boolean;
}

export const OVERFLOW_PEER: Peer = { role: undefined, address: undefined, port: undefined, overflow: true };

/** One string per peer: equal peers, equal ids. */
export function peerId(p: Peer): string {
  return p.overflow ? 'overflow' : `${p.role ?? '?'}|${p.address ?? ''}|${p.port ?? ''}`;
}

/** TCP health increments of one (process, peer) over one interval. */
export interface TcpCounts {
  /** Client: handshakes started. */
  attempts: number;
  /** Client: handshakes completed; server: connections accepted. */
  established: number;
  /** Client: failed handshakes by error.type (an errno name such as ECONNREFUSED; `aborted`; `_OTHER` when folded). */
  failures: Record<string, number>;
  resetsSent: number;
  resetsRecv: number;
  retransmits: number;
  /** Established connections that ended; their lifetimes are in the buckets. */
  closed: number;
  lifetimeSumNs: number;
  /** Counts per lifetime bucket (tcpLifetimeBoundsNs() upper bounds, then above). */
  lifetimeBuckets: number[];
}

export interface TcpObservation {
  readonly tgid: number;
  readonly peer: Peer;
  readonly counts: TcpCounts;
}

/** Flow increments of one connection's (process, peer, protocol) over one interval. */
export interface FlowObservation {
  readonly tgid: number;
  readonly peer: Peer;
  readonly transport: 'tcp' | 'udp';
  /** network.protocol.name when the connection tracker recognised one; undefined otherwise (never guessed). */
  readonly protocol: string | undefined;
  readonly bytesSent: number;
  readonly bytesRecv: number;
  /** 1 the first time a connection is accounted (its first bytes, or its close), else 0. */
  readonly connections: number;
}

export interface NetworkInterval {
  readonly tcp: readonly TcpObservation[];
  readonly flows: readonly FlowObservation[];
  /** Processes whose exit this interval closed: their last increments are above. */
  readonly exited: readonly number[];
}

export function emptyTcpCounts(buckets: number): TcpCounts {
  return {
    attempts: 0,
    established: 0,
    failures: {},
    resetsSent: 0,
    resetsRecv: 0,
    retransmits: 0,
    closed: 0,
    lifetimeSumNs: 0,
    lifetimeBuckets: new Array<number>(buckets).fill(0),
  };
}

/** Adds `b` into `a`. */
export function addTcpCounts(a: TcpCounts, b: TcpCounts): void {
  a.attempts += b.attempts;
  a.established += b.established;
  for (const [k, v] of Object.entries(b.failures)) a.failures[k] = (a.failures[k] ?? 0) + v;
  a.resetsSent += b.resetsSent;
  a.resetsRecv += b.resetsRecv;
  a.retransmits += b.retransmits;
  a.closed += b.closed;
  a.lifetimeSumNs += b.lifetimeSumNs;
  for (let i = 0; i < b.lifetimeBuckets.length; i++) a.lifetimeBuckets[i] = (a.lifetimeBuckets[i] ?? 0) + b.lifetimeBuckets[i]!;
}
