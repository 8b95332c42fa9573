// TCP health increments from the kernel's cumulative counters: each read of
// tcp_peers is compared with the previous one, key by key.

import type { TcpPeerEntry } from '../capture/kernel-tables';
import { TCP_LIFETIME_BUCKETS } from '../capture/layout';
import { errnoName } from '../capture/syscall-names';
import { OVERFLOW_PEER, emptyTcpCounts, type Peer, type TcpCounts, type TcpObservation } from './types';

/** error.type of a failed connect: the socket error's errno name; `aborted` when the owner closed it first. */
export function connectErrorType(err: number): string {
  return err === 0 ? 'aborted' : errnoName(err);
}

/** Failures folded into a process's overflow key lost their socket error. */
export const FOLDED_ERROR_TYPE = '_OTHER';

export class TcpHealthDiff {
  /** The last cumulative counters per kernel key. */
  private last = new Map<string, TcpPeerEntry>();
  /** Keys whose counters went down: deleted and recreated between two reads. */
  restarted = 0;

  /** Increments since the previous read; keys missing from `entries` are forgotten. */
  diff(entries: readonly TcpPeerEntry[]): TcpObservation[] {
    const out: TcpObservation[] = [];
    const next = new Map<string, TcpPeerEntry>();
    for (const e of entries) {
      next.set(e.id, e);
      const counts = this.increments(e, this.last.get(e.id));
      if (counts !== undefined) out.push({ tgid: e.tgid, peer: peerOf(e), counts });
    }
    this.last = next;
    return out;
  }

  /** Forgets every key of these processes (deleted from the kernel). */
  forget(tgids: ReadonlySet<number>): void {
    for (const [id, e] of this.last) if (tgids.has(e.tgid)) this.last.delete(id);
  }

  get keys(): number {
    return this.last.size;
  }

  private increments(e: TcpPeerEntry, prev: TcpPeerEntry | undefined): TcpCounts | undefined {
    let p = prev;
    if (p !== undefined && wentDown(e, p)) {
      this.restarted++;
      p = undefined;
    }
    const d = (f: NumericField) => e[f] - (p?.[f] ?? 0);
    const c = emptyTcpCounts(TCP_LIFETIME_BUCKETS);
    c.attempts = d('attempts');
    c.established = d('established');
    const failed = d('failed');
    if (failed > 0) c.failures[e.kind === 'failure' ? connectErrorType(e.err) : FOLDED_ERROR_TYPE] = failed;
    c.resetsSent = d('resetsSent');
    c.resetsRecv = d('resetsRecv');
    c.retransmits = d('retransmits');
    c.closed = d('closed');
    c.lifetimeSumNs = d('lifetimeSumNs');
    let any = c.attempts + c.established + failed + c.resetsSent + c.resetsRecv + c.retransmits + c.closed > 0;
    for (let i = 0; i < TCP_LIFETIME_BUCKETS; i++) {
      c.lifetimeBuckets[i] = e.lifetimeBuckets[i]! - (p?.lifetimeBuckets[i] ?? 0);
      if (c.lifetimeBuckets[i]! > 0) any = true;
    }
    return any ? c : undefined;
  }
}

type NumericField = 'attempts' | 'established' | 'failed' | 'resetsSent' | 'resetsRecv' | 'retransmits' | 'closed' | 'lifetimeSumNs';
const FIELDS: readonly NumericField[] = ['attempts', 'established', 'failed', 'resetsSent', 'resetsRecv', 'retransmits', 'closed', 'lifetimeSumNs'];

function wentDown(e: TcpPeerEntry, p: TcpPeerEntry): boolean {
  for (const f of FIELDS) if (e[f] < p[f]) return true;
  for (let i = 0; i < e.lifetimeBuckets.length; i++) if (e.lifetimeBuckets[i]! < p.lifetimeBuckets[i]!) return true;
  return false;
}

function peerOf(e: TcpPeerEntry): Peer {
  if (e.kind === 'overflow') return OVERFLOW_PEER;
  return { role: e.role, address: e.peerAddress, port: e.port, overflow: false };
}
