// A kernel session without a kernel: the agent's tests and benchmarks build
// the real agent on it and feed it recorded batches through agent.replay().
// It records the capture-mode requests it is given; its TCP and connection
// tables are empty.

import type { KernelSession, KernelSessionOptions, KernelSessionStats } from '../../src/capture/capture-engine';

export class FakeKernelSession implements KernelSession {
  readonly calls: Array<[number[], number]> = [];
  options: KernelSessionOptions | undefined;
  readonly selected = new Set<number>();
  closed = false;

  setConnectionModes(connIds: readonly number[], mode: number): number {
    this.calls.push([[...connIds], mode]);
    return connIds.length;
  }
  selectTgid(tgid: number, on: boolean): void {
    if (on) this.selected.add(tgid);
    else this.selected.delete(tgid);
  }
  selectCgroup(): void {}
  setExecNames(): void {}
  attachAll(): string[] {
    return [];
  }
  start(): void {}
  stats(): KernelSessionStats {
    return { kernel: [], batchesDelivered: 0, recordsDelivered: 0, batchesDropped: 0, recordsDropped: 0, bytesDropped: 0 };
  }
  close(): void {
    this.closed = true;
  }
  readTcpPeers(): Buffer {
    return Buffer.alloc(0);
  }
  readConnections(): Buffer {
    return Buffer.alloc(0);
  }
  deleteTcpPeers(tgids: readonly number[]): number {
    return tgids.length;
  }
}

/** An openSession that hands out `session` and remembers the options it was opened with. */
export function opener(session: FakeKernelSession): (o: KernelSessionOptions) => KernelSession {
  return (o) => {
    session.options = o;
    return session;
  };
}
