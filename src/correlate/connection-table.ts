// Connections the agent follows, keyed by connection id (unique per agent run,
// so a reused fd is a new entry). Bounded: past `maxConnections` the oldest
// entry is evicted and counted. On process exit the table closes what the
// process still held, since the kernel sees no close() for those.

import type { CaptureEvent, CloseEvent, ConnRole, DataEvent, OpenEvent, SocketTuple } from '../capture/events';
import type { Logger } from '../util/log';

export interface Connection {
  readonly connId: number;
  readonly tgid: number;
  readonly fd: number;
  readonly comm: string;
  readonly netns: number;
  readonly cgroupId: bigint;
  readonly tuple: SocketTuple;
  role: ConnRole;
  bytesSent: number;
  bytesRecv: number;
  readonly openedNs: number;
}

export interface ConnectionTableStats {
  open: number;
  evicted: number;
  /** Data for a connection whose open event was not seen (selected mid-connection). */
  implicitOpens: number;
  closedByExit: number;
}

function newConnection(e: DataEvent | OpenEvent, openedNs: number): Connection {
  return {
    connId: e.connId,
    tgid: e.tgid,
    fd: e.fd,
    comm: e.comm,
    netns: e.netns,
    cgroupId: e.cgroupId,
    tuple: e.tuple,
    role: e.role,
    bytesSent: 0,
    bytesRecv: 0,
    openedNs,
  };
}

export class ConnectionTable {
  private readonly byId = new Map<number, Connection>();
  private readonly byTgid = new Map<number, Set<number>>();
  private readonly counters = { evicted: 0, implicitOpens: 0, closedByExit: 0 };

  constructor(
    private readonly logger: Logger,
    private readonly maxConnections = 65536,
    /** Told about each connection the bound evicts (at `atNs`, when the one that took its place opened), so owners of per-connection state can free it. */
    private readonly onEvict?: (c: Connection, atNs: number) => void,
  ) {}

  /**
   * Updates the table with one event; returns the close events the event
   * implies (one per connection a process held when it exited), else none.
   */
  apply(e: CaptureEvent): CloseEvent[] | undefined {
    switch (e.type) {
      case 'open':
        this.add(newConnection(e, e.tsNs));
        return undefined;
      case 'data': {
        let c = this.byId.get(e.connId);
        if (!c) {
          this.counters.implicitOpens++;
          c = newConnection(e, e.tsEnterNs);
          this.add(c);
        }
        if (e.dir === 'egress') c.bytesSent += e.size;
        else c.bytesRecv += e.size;
        return undefined;
      }
      case 'close':
        this.remove(e.connId);
        return undefined;
      case 'exit':
        return this.closeAllOf(e.tgid, e.tsNs);
      default:
        return undefined;
    }
  }

  get(connId: number): Connection | undefined {
    return this.byId.get(connId);
  }

  stats(): ConnectionTableStats {
    return { open: this.byId.size, ...this.counters };
  }

  private add(c: Connection): void {
    if (this.byId.has(c.connId)) this.remove(c.connId);
    if (this.byId.size >= this.maxConnections) {
      const oldest = this.remove(this.byId.keys().next().value as number);
      this.counters.evicted++;
      if (oldest) this.onEvict?.(oldest, c.openedNs);
      this.logger.warnOnce(
        'conn-table-full',
        `connection table full (${this.maxConnections}): evicting the oldest connections; counted in connections_evicted`,
      );
    }
    this.byId.set(c.connId, c);
    let set = this.byTgid.get(c.tgid);
    if (!set) this.byTgid.set(c.tgid, (set = new Set()));
    set.add(c.connId);
  }

  private remove(connId: number): Connection | undefined {
    const c = this.byId.get(connId);
    if (!c) return undefined;
    this.byId.delete(connId);
    const set = this.byTgid.get(c.tgid);
    set?.delete(connId);
    if (set?.size === 0) this.byTgid.delete(c.tgid);
    return c;
  }

  private closeAllOf(tgid: number, tsNs: number): CloseEvent[] {
    const ids = this.byTgid.get(tgid);
    if (!ids) return [];
    const out: CloseEvent[] = [];
    for (const id of [...ids]) {
      const c = this.remove(id);
      if (!c) continue;
      this.counters.closedByExit++;
      out.push({
        type: 'close',
        tgid: c.tgid,
        tid: c.tgid,
        comm: c.comm,
        cgroupId: c.cgroupId,
        fd: c.fd,
        connId: c.connId,
        tsNs,
        netns: c.netns,
        role: c.role,
        reason: 'exit',
        tuple: c.tuple,
        bytesSent: c.bytesSent,
        bytesRecv: c.bytesRecv,
      });
    }
    return out;
  }
}
