// A kernel session without a kernel: the agent's tests and benchmarks build
// the real agent on it and feed it recorded batches through agent.replay().
// It records the capture-mode requests it is given and the uprobes attached
// to it (attaching fails where `failAttach` says); its TCP and connection
// tables are empty.

import type { AgentDeps } from '../../src/agent/agent';
import type { KernelSession, KernelSessionOptions, KernelSessionStats } from '../../src/capture/capture-engine';
import type { LinkInfo, UprobeOptions } from '../../src/capture/native-binding';
import { PROC_PID_INIT_INO } from '../../src/capture/pid-namespace';
import type { ProtocolDefinition } from '../../src/protocols/types';
import { ProcFs } from '../../src/util/procfs';
import { silentLogger } from '../../src/util/log';

export class FakeKernelSession implements KernelSession {
  readonly calls: Array<[number[], number]> = [];
  options: KernelSessionOptions | undefined;
  readonly selected = new Set<number>();
  closed = false;
  /** Uprobe links attached now, by link id. */
  readonly uprobes = new Map<number, { program: string; path: string; symbol: string; retprobe: boolean; cookie?: number }>();
  /** Writes to runtime-link maps: `map[slot]` = value (hex). */
  readonly linkMaps = new Map<string, string>();
  uprobeAttachCalls = 0;
  /** An error for this attach, or undefined to let it succeed. */
  failAttach: ((program: string, path: string) => Error | undefined) | undefined;
  private nextLink = 1;

  attachUprobe(program: string, path: string, symbol: string | number, opts?: UprobeOptions): number {
    this.uprobeAttachCalls++;
    const err = this.failAttach?.(program, path);
    if (err) throw err;
    const id = this.nextLink++;
    this.uprobes.set(id, { program, path, symbol: String(symbol), retprobe: opts?.retprobe ?? false, ...(opts?.cookie !== undefined ? { cookie: opts.cookie } : {}) });
    return id;
  }
  updateLinkMap(map: string, key: Buffer, value: Buffer): void {
    this.linkMaps.set(`${map}[${key.readUInt32LE(0)}]`, value.toString('hex'));
  }
  detach(linkId: number): void {
    if (!this.uprobes.delete(linkId)) throw Object.assign(new Error(`no link ${linkId} in this session`), { code: 'ENOENT', op: 'detach' });
  }
  links(): LinkInfo[] {
    return [...this.uprobes].map(([id, u]) => ({ id, program: u.program, target: `${u.retprobe ? 'uretprobe' : 'uprobe'}:${u.path}:${u.symbol}` }));
  }

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

/** Inode of the initial pid namespace: the host's, as a node-wide agent sees it. */
export const HOST_PIDNS = { ino: PROC_PID_INIT_INO, dev: 4n, host: true } as const;

/**
 * What createAgent needs to run on `session` instead of a kernel: the
 * given fake /proc, the host's pid namespace, no agent pid among the traced
 * ones, no tick timer (the test ticks), metric exports once a minute,
 * uprobes available (the tls feature is on, whatever this machine has).
 */
export function fakeKernelDeps(session: FakeKernelSession, proc: string, protocols: readonly ProtocolDefinition[]): AgentDeps {
  return {
    logger: silentLogger,
    env: { OTEL_METRIC_EXPORT_INTERVAL: '60000' },
    protocols,
    openSession: opener(session),
    procfs: new ProcFs(proc),
    pidNamespace: HOST_PIDNS,
    agentPid: 1,
    tickMs: 0,
    uprobesAvailable: () => true,
  };
}
