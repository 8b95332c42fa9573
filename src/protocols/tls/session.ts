// A connection whose bytes are TLS ciphertext: nothing in them can be parsed.
// The session counts it, tells the tracker at its first bytes that they
// belong to nobody (the tracker then stops reading it and asks the kernel to
// mute it, as for an HTTP/1.1 Upgrade to a protocol nobody parses), and
// never emits a record.

import { newProtocolStats, type Chunk, type L7Record, type ProtocolSession, type ProtocolStats, type SessionObserver, type Side } from '../types';
import { TLS_COUNTERS } from './counters';

/** Neither side's position is known to anyone who could parse what follows. */
const TO_NOBODY = { upgrade: undefined, from: { egress: undefined, ingress: undefined }, held: [] } as const;

export class TlsSession implements ProtocolSession {
  readonly stats: ProtocolStats = newProtocolStats(TLS_COUNTERS);
  private handedOff = false;

  constructor(private readonly observer: SessionObserver | undefined) {
    this.stats['unprobedConnections'] = 1;
  }

  onChunk(_chunk: Chunk, _out: L7Record[]): void {
    if (this.handedOff) return;
    this.handedOff = true;
    this.observer?.protocolSwitched?.(TO_NOBODY);
  }

  onGap(_side: Side, _pos: number, _bytes: number, _atNs: number, _out: L7Record[]): void {}

  expire(_nowNs: number, _timeoutNs: number, _out: L7Record[]): void {}

  close(_atNs: number, _out: L7Record[]): void {}

  dispose(): void {}

  bufferedBytes(): number {
    return 0;
  }
}
