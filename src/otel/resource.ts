// One OTLP resource per traced process, built from /proc and cached (LRU,
// bounded, evictions counted). Attribute names follow the OpenTelemetry
// semantic conventions (checked against @opentelemetry/semantic-conventions
// in test/otel/resource.test.ts).
//
// Correct before complete: a process whose pid was reused (start time differs)
// or that is gone is never described by what /proc now shows; it keeps what
// was read while it lived, or what its exit event told.
//
// service.name, in order: the process's own OTEL_SERVICE_NAME; service.name in
// its OTEL_RESOURCE_ATTRIBUTES; service.name in the configuration file's
// resource.attributes; the script an interpreter runs (python app.py
// -> "app", node server.js -> "server", python -m flask -> "flask"); the
// executable's name; the comm of its exit event; "unknown_service".
//
// service.instance.id: the process's own (OTEL_RESOURCE_ATTRIBUTES) if set,
// else a UUID v5 (namespace from the service conventions) of host name, boot
// time, pid and process start time: stable for the life of the process, also
// across agent restarts. Without a start time, a random UUID v4 per cached
// process.
//
// Kubernetes attributes come from the agent's own environment (downward API):
// K8S_POD_NAME, K8S_NAMESPACE_NAME, K8S_POD_UID, K8S_NODE_NAME and
// K8S_CONTAINER_NAME (the *application* container's name, set in the sidecar
// manifest). k8s.node.name describes every process: the agent only sees its
// node's. The pod ones describe a process only when it is known to be in the
// agent's pod: its cgroup names that pod, or names no pod while the agent's
// pid namespace is its pod's (a sidecar with shareProcessNamespace: the
// namespace holds the pod's processes and nothing else, and the cgroup
// namespace usually hides the pod from the path). Never when the cgroup
// names another pod; never, in the host's namespace, for a process whose
// cgroup says nothing (a node daemon is nobody's pod).

import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { Attributes } from '@opentelemetry/api';
import type { ProcFs } from '../util/procfs';
import type { ProcessIdentity } from '../correlate/trace-record';
import type { Env } from './config';

/** Attribute names (semantic conventions 1.x; stable and incubating). */
export const ATTR = {
  SERVICE_NAME: 'service.name',
  SERVICE_INSTANCE_ID: 'service.instance.id',
  PROCESS_PID: 'process.pid',
  PROCESS_EXECUTABLE_NAME: 'process.executable.name',
  PROCESS_EXECUTABLE_PATH: 'process.executable.path',
  PROCESS_COMMAND_ARGS: 'process.command_args',
  PROCESS_RUNTIME_NAME: 'process.runtime.name',
  PROCESS_CREATION_TIME: 'process.creation.time',
  HOST_NAME: 'host.name',
  CONTAINER_ID: 'container.id',
  K8S_POD_NAME: 'k8s.pod.name',
  K8S_POD_UID: 'k8s.pod.uid',
  K8S_NAMESPACE_NAME: 'k8s.namespace.name',
  K8S_NODE_NAME: 'k8s.node.name',
  K8S_CONTAINER_NAME: 'k8s.container.name',
  TELEMETRY_DISTRO_NAME: 'telemetry.distro.name',
  TELEMETRY_DISTRO_VERSION: 'telemetry.distro.version',
} as const;

export const DISTRO_NAME = 'ebpf-otel-sidecar';

/** Namespace UUID the service conventions give for a v5 service.instance.id. */
const SERVICE_INSTANCE_NAMESPACE = '4d63009a-8d0f-11ee-aad7-4c796ed8e320';

/** Agent environment variables that carry Kubernetes attributes (downward API). */
export const K8S_ENV: ReadonlyArray<readonly [string, string]> = [
  ['K8S_POD_NAME', ATTR.K8S_POD_NAME],
  ['K8S_NAMESPACE_NAME', ATTR.K8S_NAMESPACE_NAME],
  ['K8S_POD_UID', ATTR.K8S_POD_UID],
  ['K8S_NODE_NAME', ATTR.K8S_NODE_NAME],
  ['K8S_CONTAINER_NAME', ATTR.K8S_CONTAINER_NAME],
];

export interface ProcessResourcesOptions {
  readonly procfs: ProcFs;
  /** The agent's own environment (Kubernetes variables, its OTEL_RESOURCE_ATTRIBUTES). */
  readonly agentEnv: Env;
  readonly hostName: string;
  /** telemetry.distro.version */
  readonly distroVersion: string;
  readonly captureCommandArgs?: boolean;
  /**
   * Attributes for every traced process (the configuration file's
   * resource.attributes), taken as if the process had declared them in its
   * OTEL_RESOURCE_ATTRIBUTES, below its own: what the process declares
   * (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins per key, and what the
   * agent measures (process.pid, executable, container.id) wins over both.
   */
  readonly attributes?: Readonly<Attributes>;
  /**
   * The agent's pid namespace is its pod's (not the host's): every process it
   * traces is in its pod by construction. Default false.
   */
  readonly podPidNamespace?: boolean;
  readonly maxProcesses?: number;
  /**
   * Exited processes whose resources stay cached (default 64), for records
   * that end after their exit event. Their queued spans and retiring meters
   * hold their own reference, so dropping one costs only a late record's
   * resource (then built without /proc, never another process's).
   */
  readonly maxExited?: number;
  /** Clock ticks per second of /proc/pid/stat start times (USER_HZ). */
  readonly ticksPerSecond?: number;
  readonly randomUuid?: () => string;
}

/** What an exit event knows of a process, for one /proc can no longer show. */
export interface ExitInfo {
  readonly comm?: string;
  readonly exePath?: string;
}

export interface ResourceStats {
  /** Resources built from /proc. */
  built: number;
  /** Resources built without /proc (process gone, or pid reused). */
  builtWithoutProc: number;
  /** Cached resources evicted by the bound. */
  evicted: number;
  /** Resources of exited processes dropped past maxExited (not an eviction: they are done). */
  exitedDropped: number;
}

interface Entry {
  readonly startTimeTicks: number | undefined;
  readonly resource: Resource;
  /** The process is gone: never read /proc for it again. */
  final: boolean;
}

export class ProcessResources {
  readonly stats: ResourceStats = { built: 0, builtWithoutProc: 0, evicted: 0, exitedDropped: 0 };
  private readonly cache = new Map<number, Entry>();
  /**
   * The entry lookup or build last put at the end of `cache`. Only ever
   * skips an LRU move: the entry returned is always the one cache holds.
   */
  private newest: Entry | undefined;
  /** Exited processes' entries, oldest exit first. */
  private readonly exitedOrder = new Set<number>();
  private readonly maxExited: number;
  private readonly maxProcesses: number;
  private readonly ticksPerSecond: number;
  private readonly randomUuid: () => string;
  private readonly bootTimeSeconds: number | undefined;
  private readonly agentPodUid: string | undefined;
  private agent: Resource | undefined;

  constructor(private readonly opts: ProcessResourcesOptions) {
    this.maxProcesses = Math.max(1, opts.maxProcesses ?? 4096);
    this.maxExited = Math.max(0, opts.maxExited ?? 64);
    this.ticksPerSecond = opts.ticksPerSecond ?? 100;
    this.randomUuid = opts.randomUuid ?? randomUUID;
    this.bootTimeSeconds = readBootTime(opts.procfs.root);
    this.agentPodUid = nonEmpty(opts.agentEnv['K8S_POD_UID']) ?? podUidFromCgroups(readSelfCgroups(opts.procfs));
  }

  /** The resource of a process: cached, else read from /proc now. */
  resourceFor(p: ProcessIdentity): Resource {
    const hit = this.lookup(p);
    if (hit) return hit.resource;
    return this.build(p, undefined).resource;
  }

  /** Reads a process's resource now, while /proc still shows it (at selection or exec). */
  learn(p: ProcessIdentity): void {
    if (!this.lookup(p)) this.build(p, undefined);
  }

  /** The process exec'd another program: its resource is read again on next use. */
  invalidate(tgid: number): void {
    const e = this.cache.get(tgid);
    if (e && !e.final) this.cache.delete(tgid);
  }

  /** The process exited: keep what was read; if nothing was, build from the exit event. */
  exited(p: ProcessIdentity, info: ExitInfo = {}): void {
    const hit = this.lookup(p);
    if (hit) hit.final = true;
    else this.build(p, info);
    // Short-lived processes come by the thousand: keep only the latest exits.
    this.exitedOrder.delete(p.tgid);
    this.exitedOrder.add(p.tgid);
    while (this.exitedOrder.size > this.maxExited) {
      const oldest = this.exitedOrder.values().next().value as number;
      this.exitedOrder.delete(oldest);
      const e = this.cache.get(oldest);
      if (e?.final) {
        this.cache.delete(oldest);
        this.stats.exitedDropped++;
      }
    }
  }

  /** The agent's own resource (its own metrics). */
  agentResource(): Resource {
    if (!this.agent) {
      const attrs: Attributes = parseResourceAttributes(this.opts.agentEnv['OTEL_RESOURCE_ATTRIBUTES']) ?? {};
      attrs[ATTR.SERVICE_NAME] = DISTRO_NAME;
      attrs[ATTR.SERVICE_INSTANCE_ID] ??= this.randomUuid();
      attrs[ATTR.PROCESS_PID] = process.pid;
      attrs[ATTR.HOST_NAME] ??= this.opts.hostName;
      for (const [name, attr] of K8S_ENV) {
        if (name === 'K8S_CONTAINER_NAME') continue; // names the application's container, not ours
        const v = nonEmpty(this.opts.agentEnv[name]);
        if (v !== undefined) attrs[attr] ??= v;
      }
      attrs[ATTR.TELEMETRY_DISTRO_NAME] = DISTRO_NAME;
      attrs[ATTR.TELEMETRY_DISTRO_VERSION] = this.opts.distroVersion;
      this.agent = resourceFromAttributes(attrs);
    }
    return this.agent;
  }

  get size(): number {
    return this.cache.size;
  }

  /** Whether a process whose cgroup names `podUid` (or no pod) is known to be in the agent's pod. */
  private inAgentPod(podUid: string | undefined): boolean {
    if (podUid !== undefined) return podUid === this.agentPodUid;
    return this.opts.podPidNamespace === true;
  }

  private lookup(p: ProcessIdentity): Entry | undefined {
    const e = this.cache.get(p.tgid);
    if (!e) return undefined;
    if (e.startTimeTicks !== undefined && p.startTimeTicks !== undefined && e.startTimeTicks !== p.startTimeTicks) {
      // Same pid, another process.
      this.cache.delete(p.tgid);
      return undefined;
    }
    // Refresh LRU position, unless it is the entry this did last (then already the newest):
    // consecutive records of one process skip the delete and re-insert.
    if (e !== this.newest) {
      this.cache.delete(p.tgid);
      this.cache.set(p.tgid, e);
      this.newest = e;
    }
    return e;
  }

  private build(p: ProcessIdentity, exit: ExitInfo | undefined): Entry {
    const pid = p.tgid;
    const fsys = this.opts.procfs;
    let startTicks = p.startTimeTicks;
    let live = exit === undefined;
    if (live) {
      const procStart = readStartTimeTicks(fsys.root, pid);
      if (procStart === undefined) live = false; // gone
      else if (startTicks !== undefined && procStart !== startTicks) live = false; // pid reused
      else startTicks = procStart;
    }

    const exePath = live ? cleanExePath(fsys.exePath(pid)) : exit?.exePath;
    const argv = live ? fsys.cmdline(pid) : undefined;
    const env = live ? fsys.environ(pid) : undefined;
    const cgroups = live ? fsys.cgroupPaths(pid) : [];
    // The process may have exited between reads: confirm it is still the same one.
    if (live && readStartTimeTicks(fsys.root, pid) !== startTicks) live = false;

    const attrs: Attributes = {
      ...this.opts.attributes,
      ...(live ? parseResourceAttributes(env?.get('OTEL_RESOURCE_ATTRIBUTES')) : undefined),
    };
    const exeName = exePath ? path.basename(exePath) : undefined;
    const serviceName =
      (live ? nonEmpty(env?.get('OTEL_SERVICE_NAME')) : undefined) ??
      nonEmptyAttr(attrs[ATTR.SERVICE_NAME]) ??
      (exeName && argv ? scriptName(exeName, argv) : undefined) ??
      exeName ??
      nonEmpty(exit?.comm) ??
      'unknown_service';
    attrs[ATTR.SERVICE_NAME] = serviceName;
    if (attrs[ATTR.SERVICE_INSTANCE_ID] === undefined) {
      attrs[ATTR.SERVICE_INSTANCE_ID] =
        startTicks !== undefined
          ? uuidV5(SERVICE_INSTANCE_NAMESPACE, `${this.opts.hostName}/${this.bootTimeSeconds ?? '?'}/${pid}/${startTicks}`)
          : this.randomUuid();
    }
    attrs[ATTR.PROCESS_PID] = pid;
    if (exeName) attrs[ATTR.PROCESS_EXECUTABLE_NAME] = exeName;
    if (exePath) attrs[ATTR.PROCESS_EXECUTABLE_PATH] = exePath;
    if (this.opts.captureCommandArgs && argv && argv.length > 0) attrs[ATTR.PROCESS_COMMAND_ARGS] = argv;
    const runtime = exeName ? runtimeName(exeName) : undefined;
    if (runtime) attrs[ATTR.PROCESS_RUNTIME_NAME] = runtime;
    if (startTicks !== undefined && this.bootTimeSeconds !== undefined) {
      const ms = this.bootTimeSeconds * 1000 + (startTicks * 1000) / this.ticksPerSecond;
      attrs[ATTR.PROCESS_CREATION_TIME] = new Date(Math.round(ms)).toISOString();
    }
    attrs[ATTR.HOST_NAME] ??= this.opts.hostName;
    const containerId = containerIdFromCgroups(cgroups);
    if (containerId) attrs[ATTR.CONTAINER_ID] = containerId;
    const podUid = podUidFromCgroups(cgroups);
    if (podUid) attrs[ATTR.K8S_POD_UID] ??= podUid;
    if (live || exit !== undefined) {
      const samePod = this.inAgentPod(podUid);
      for (const [name, attr] of K8S_ENV) {
        if (name !== 'K8S_NODE_NAME' && !samePod) continue;
        const v = nonEmpty(this.opts.agentEnv[name]);
        if (v !== undefined) attrs[attr] ??= v;
      }
    }
    attrs[ATTR.TELEMETRY_DISTRO_NAME] = DISTRO_NAME;
    attrs[ATTR.TELEMETRY_DISTRO_VERSION] = this.opts.distroVersion;

    if (live) this.stats.built++;
    else this.stats.builtWithoutProc++;
    const entry: Entry = { startTimeTicks: startTicks, resource: resourceFromAttributes(attrs), final: !live };
    this.cache.delete(pid);
    this.cache.set(pid, entry);
    this.newest = entry;
    while (this.cache.size > this.maxProcesses) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
      this.stats.evicted++;
    }
    return entry;
  }
}

/**
 * OTEL_RESOURCE_ATTRIBUTES: `k1=v1,k2=v2`, keys and values percent-decoded.
 * Any malformed entry discards the whole value (resource SDK specification).
 */
export function parseResourceAttributes(raw: string | undefined): Attributes | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const out: Attributes = {};
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) return undefined;
    try {
      const key = decodeURIComponent(entry.slice(0, eq).trim());
      const value = decodeURIComponent(entry.slice(eq + 1).trim());
      if (key === '') return undefined;
      out[key] = value;
    } catch {
      return undefined;
    }
  }
  return out;
}

const PYTHON = /^(python|pypy)[0-9.]*$/;
const NODE = /^(node|nodejs)$/;
const RUBY = /^ruby[0-9.]*$/;
const NODE_VALUE_OPTIONS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--input-type', '--title', '-C', '--conditions', '--env-file']);
const RUBY_VALUE_OPTIONS = new Set(['-r', '-I', '-C', '-E', '-F']);

/** The script (or module) an interpreter runs, as a service name; undefined when there is none. */
export function scriptName(exeName: string, argv: readonly string[]): string | undefined {
  const args = argv.slice(1);
  let script: string | undefined;
  if (PYTHON.test(exeName)) {
    for (let i = 0; i < args.length && script === undefined; i++) {
      const a = args[i]!;
      if (a === '-' || a === '--') return a === '-' ? undefined : args[i + 1] !== undefined ? stripExt(args[i + 1]!) : undefined;
      if (!a.startsWith('-') || a.length === 1) {
        script = a;
        break;
      }
      if (a.startsWith('--')) continue; // --version, --help and friends take no value
      // Combined short flags: -u, -uB, -m mod, -mmod, -c cmd, -W arg, -X opt.
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === 'c') return undefined;
        if (c === 'm') {
          const mod = a.length > j + 1 ? a.slice(j + 1) : args[i + 1];
          return mod !== undefined && mod !== '' ? mod : undefined;
        }
        if (c === 'W' || c === 'X') {
          if (j === a.length - 1) i++; // value is the next argument
          break;
        }
      }
    }
  } else if (NODE.test(exeName)) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '-') return undefined;
      if (a === '--') {
        script = args[i + 1];
        break;
      }
      if (NODE_VALUE_OPTIONS.has(a)) {
        i++;
        continue;
      }
      if (a.startsWith('-')) continue;
      script = a;
      break;
    }
  } else if (RUBY.test(exeName)) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-e') return undefined;
      if (RUBY_VALUE_OPTIONS.has(a)) {
        i++;
        continue;
      }
      if (a.startsWith('-')) continue;
      script = a;
      break;
    }
  } else {
    return undefined;
  }
  if (script === undefined || script === '') return undefined;
  return stripExt(script);
}

function stripExt(file: string): string | undefined {
  const base = path.basename(file);
  const name = base.replace(/\.(py|pyc|pyz|js|mjs|cjs|ts|mts|cts|rb)$/, '');
  return name === '' ? undefined : name;
}

/** process.runtime.name where the executable tells it (semantic conventions' values). */
export function runtimeName(exeName: string): string | undefined {
  if (/^python[0-9.]*$/.test(exeName)) return 'cpython';
  if (/^pypy[0-9.]*$/.test(exeName)) return 'pypy';
  if (NODE.test(exeName)) return 'nodejs';
  if (RUBY.test(exeName)) return 'ruby';
  return undefined;
}

const CONTAINER_SEGMENT = /^(?:docker-|cri-containerd-|crio-|libpod-|containerd-)?([0-9a-f]{64})(?:\.scope)?$/;

/**
 * container.id from cgroup paths: docker (/docker/<id>, docker-<id>.scope),
 * containerd and Kubernetes (/kubepods/.../<id>, cri-containerd-<id>.scope),
 * cri-o (crio-<id>.scope), podman (libpod-<id>.scope). conmon scopes are not
 * containers. The innermost match wins.
 */
export function containerIdFromCgroups(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    const segments = p.split('/');
    for (let i = segments.length - 1; i >= 0; i--) {
      const seg = segments[i]!;
      if (seg.includes('conmon')) continue;
      const m = CONTAINER_SEGMENT.exec(seg);
      if (m) return m[1];
    }
  }
  return undefined;
}

const POD_SEGMENT = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/** k8s.pod.uid from a Kubernetes cgroup path (cgroupfs "pod<uid>" or systemd "...-pod<uid_with_underscores>.slice"). */
export function podUidFromCgroups(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    for (const seg of p.split('/')) {
      const m = POD_SEGMENT.exec(seg);
      if (m) return m[1]!.replace(/_/g, '-');
    }
  }
  return undefined;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/pid/stat). */
export function readStartTimeTicks(root: string, pid: number): number | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(`${root}/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the comm, which may contain spaces and parentheses: state is field 3.
  const close = raw.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = raw.slice(close + 2).split(' ');
  const v = Number(fields[22 - 3]);
  return Number.isInteger(v) ? v : undefined;
}

function readBootTime(root: string): number | undefined {
  try {
    const m = /^btime\s+(\d+)$/m.exec(fs.readFileSync(`${root}/stat`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function readSelfCgroups(procfs: ProcFs): string[] {
  // /proc/self is the agent itself; in tests the fake root has none, which is fine.
  try {
    const raw = fs.readFileSync(`${procfs.root}/self/cgroup`, 'utf8');
    return raw
      .split('\n')
      .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1))
      .filter((l) => l !== '');
  } catch {
    return [];
  }
}

function cleanExePath(p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  return p.endsWith(' (deleted)') ? p.slice(0, -' (deleted)'.length) : p;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

function nonEmptyAttr(v: unknown): string | undefined {
  return typeof v === 'string' ? nonEmpty(v) : undefined;
}

/** RFC 4122 version 5 UUID (SHA-1 of namespace and name). */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
