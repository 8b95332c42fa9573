// The bound on peers per process: the first `maxPeers` peers a process is
// seen with keep their own series; later ones fold into the process's
// overflow peer, counted. A peer once admitted stays admitted until the
// process is forgotten (exit), so a series never changes its meaning.

import { OVERFLOW_PEER, peerId, type Peer } from './types';

export class PeerBound {
  private readonly admitted = new Map<number, Set<string>>();
  /** Observations folded into an overflow peer. */
  folded = 0;

  constructor(readonly maxPeers: number) {
    if (!Number.isInteger(maxPeers) || maxPeers < 0) throw new RangeError(`peers per process must be a whole number, got ${maxPeers}`);
  }

  /** `peer`, or the overflow peer when the process has no room left for it. */
  admit(tgid: number, peer: Peer): Peer {
    if (peer.overflow) return peer;
    const id = peerId(peer);
    let set = this.admitted.get(tgid);
    if (set === undefined) this.admitted.set(tgid, (set = new Set()));
    if (set.has(id)) return peer;
    if (set.size < this.maxPeers) {
      set.add(id);
      return peer;
    }
    this.folded++;
    return OVERFLOW_PEER;
  }

  forget(tgid: number): void {
    this.admitted.delete(tgid);
  }

  get processes(): number {
    return this.admitted.size;
  }
}
