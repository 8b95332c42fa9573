// `ebpf-otel doctor`: what this kernel and these privileges allow, and what
// the agent will use. Exits 0 when the agent can run, 1 otherwise.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { loadNativeBinding, type NativeBinding, type NativeFeatures } from '../capture/native-binding';
import { describePidNamespace, readPidNamespace } from '../capture/pid-namespace';
import { BTF_PATH, CAP, capabilityAdvisories, effectiveCaps, hasCap, lockdownMode, missingCaps, type CapName } from '../capture/privileges';
import { parse } from '../config/flags';

interface Check {
  readonly name: string;
  readonly ok: boolean | undefined;
  readonly detail: string;
  /** The agent cannot run without it. */
  readonly required: boolean;
}

// ---- TCP health ----
/** Socket tracepoints TCP health attaches to (the tcph_* programs). */
export const TCP_TRACEPOINTS_USED = ['sock/inet_sock_set_state', 'tcp/tcp_retransmit_skb', 'tcp/tcp_send_reset', 'tcp/tcp_receive_reset'];
/** Others a kernel may offer that the agent does not need (listed for the record). */
export const TCP_TRACEPOINTS_UNUSED = [
  'tcp/tcp_destroy_sock',
  'tcp/tcp_retransmit_synack',
  'tcp/tcp_probe',
  'tcp/tcp_bad_csum',
  'tcp/tcp_cong_state_set',
  'sock/inet_sk_error_report',
];

/** The TCP health check: which tracepoints exist under `tracefs`, which the agent uses. */
export function tcpTracepointCheck(exists: (p: string) => boolean, tracefs: string): { ok: boolean; detail: string } {
  const missing = TCP_TRACEPOINTS_USED.filter((t) => !exists(`${tracefs}/events/${t}`));
  const unused = TCP_TRACEPOINTS_UNUSED.filter((t) => exists(`${tracefs}/events/${t}`));
  const detail =
    (missing.length === 0
      ? `uses ${TCP_TRACEPOINTS_USED.join(', ')}`
      : `missing ${missing.join(', ')}: run with --no-tcp-metrics`) + (unused.length > 0 ? `; also present, unused: ${unused.join(', ')}` : '');
  return { ok: missing.length === 0, detail };
}
// ---- end TCP health ----

const SYSCALLS = [
  'read', 'write', 'readv', 'writev', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg',
  'recvmmsg', 'sendmmsg', 'connect', 'accept', 'accept4', 'close',
];

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  const checks: Check[] = [];
  const add = (name: string, ok: boolean | undefined, detail: string, required = false) =>
    checks.push({ name, ok, detail, required });

  add('kernel', os.platform() === 'linux', `${os.type()} ${os.release()} ${os.machine()}`, true);
  add('btf', fs.existsSync(BTF_PATH), fs.existsSync(BTF_PATH) ? BTF_PATH : `${BTF_PATH} missing: CO-RE needs CONFIG_DEBUG_INFO_BTF`, true);

  const caps = effectiveCaps();
  const missing = missingCaps(caps);
  const held = (Object.keys(CAP) as CapName[]).filter((c) => hasCap(caps, c)).map((c) => 'CAP_' + c);
  add(
    'privileges',
    missing.length === 0,
    `uid ${process.getuid?.() ?? '?'}; effective: ${held.join(' ') || 'none of interest'}` +
      (missing.length ? `; missing ${missing.map((c) => 'CAP_' + c).join(' ')}` : ''),
    true,
  );
  const advisories = capabilityAdvisories(caps);
  add('process environments', advisories.length === 0 ? true : undefined, advisories[0] ?? 'readable for every user (CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE)');
  try {
    add('pid namespace', true, describePidNamespace(readPidNamespace()));
  } catch (err) {
    add('pid namespace', false, (err as Error).message, true);
  }
  const lockdown = lockdownMode();
  add(
    'lockdown',
    lockdown === undefined ? undefined : lockdown !== 'confidentiality',
    lockdown === undefined
      ? 'unknown (securityfs not mounted)'
      : `${lockdown}${lockdown === 'integrity' ? ': bpf_probe_write_user forbidden (the agent never uses it)' : ''}`,
  );

  let features: NativeFeatures | undefined;
  let tracefs: string | undefined;
  let binding: NativeBinding | undefined;
  try {
    binding = loadNativeBinding();
    try {
      tracefs = binding.ensureTracefs();
      add('tracefs', true, `mounted at ${tracefs}`, true);
    } catch (err) {
      add('tracefs', false, `not mounted and cannot be mounted: ${(err as Error).message}`, true);
    }
    features = binding.probeFeatures();
    add('libbpf', true, binding.libbpfVersion());
  } catch (err) {
    add('native addon', false, (err as Error).message, true);
  }
  if (features) {
    add('ring buffer', features.ringbuf, features.ringbuf ? 'BPF_MAP_TYPE_RINGBUF' : 'needs kernel >= 5.8', true);
    add('tracepoints', features.tracepoint, 'BPF_PROG_TYPE_TRACEPOINT', true);
    add('raw tracepoints', features.rawTracepoint, 'fork following');
    add('uprobes', features.uprobe, 'TLS libraries and runtimes (user-space probes)');
    add('kprobes', features.kprobe, features.kprobe ? 'available (optional)' : 'not available (optional: not used)');
    add('fentry/fexit', features.fentry, features.fentry ? 'available (optional)' : 'refused (optional: not used)');
  }
  if (tracefs) {
    const missingTp = SYSCALLS.filter((s) => !fs.existsSync(`${tracefs}/events/syscalls/sys_enter_${s}`));
    add(
      'syscall tracepoints',
      missingTp.length === 0,
      missingTp.length === 0 ? `${SYSCALLS.length} syscalls` : `missing: ${missingTp.join(', ')} (needs CONFIG_FTRACE_SYSCALLS)`,
      true,
    );
    const sched = ['sched_process_exec', 'sched_process_exit', 'sched_process_fork'].filter(
      (t) => !fs.existsSync(`${tracefs}/events/sched/${t}`),
    );
    add('sched tracepoints', sched.length === 0, sched.length === 0 ? 'exec, exit, fork' : `missing: ${sched.join(', ')}`, true);
    const tcp = tcpTracepointCheck((p) => fs.existsSync(p), tracefs);
    add('tcp tracepoints', tcp.ok, tcp.detail);
  }
  // -- syscall latency: loaded and attached for real, then detached --
  if (binding && tracefs && features?.rawTracepoint) {
    const r = syscallLatencyProbe(binding);
    add('syscall latency', r.ok, r.detail);
  } else if (features && !features.rawTracepoint) {
    add('syscall latency', false, 'raw tracepoints unavailable: no syscall latency metrics (optional)');
  }
  // -- end syscall latency --
  const ok = checks.every((c) => !c.required || c.ok === true);
  const uses =
    'socket capture from syscall tracepoints (read/write/send/recv families, connect, accept, close); ' +
    'syscall latency from the raw tracepoints sys_enter/sys_exit (task storage, in-kernel histograms); ' +
    'process lifecycle from sched tracepoints; TCP health from sock/tcp tracepoints; events through one BPF ring buffer; no kprobes, no fentry';
  if (values.json) {
    process.stdout.write(JSON.stringify({ ok, checks, uses }, null, 2) + '\n');
  } else {
    for (const c of checks) {
      const mark = c.ok === true ? 'ok  ' : c.ok === false ? (c.required ? 'FAIL' : 'no  ') : '?   ';
      process.stdout.write(`${mark} ${c.name.padEnd(20)} ${c.detail}\n`);
    }
    process.stdout.write(`\nthe agent uses: ${uses}\n`);
    process.stdout.write(ok ? 'ready: the agent can run here\n' : 'not ready: fix the FAIL lines above\n');
  }
  return ok ? 0 : 1;
}

// -- syscall latency --
/**
 * Whether the syscalls group loads and its raw tracepoints attach here: a
 * session with that group only, attached and closed at once (a few ms of
 * tracing nothing: no process is selected).
 */
function syscallLatencyProbe(binding: NativeBinding): { ok: boolean; detail: string } {
  let session;
  try {
    session = new binding.SocketTraceSession({
      config: {
        agentTgid: process.pid,
        captureBytes: 0,
        wakeupBytes: 0,
        selectAll: false,
        captureUdp: false,
        followForks: false,
        reportExecs: false,
        pidnsDev: 0n,
        pidnsIno: 0n,
        initialMode: 0,
      },
      groups: { sockets: false, syscalls: true, tcp: false },
      tcpPeerEntries: 1,
      syscalls: { slowNs: 0, slowCostNs: 0, sigreturnNr: 0, maxHistograms: 1, fdSyscalls: [] },
      ringBufferBytes: 1 << 16,
      batchBytes: 1 << 16,
      maxPendingBatches: 1,
      pollTimeoutMs: 100,
      onBatch: () => {},
    });
    const attached = session.attachAll().filter((p) => p.startsWith('syslat_'));
    return { ok: true, detail: `raw_tp/sys_enter and raw_tp/sys_exit attach (${attached.join(', ')})` };
  } catch (err) {
    return { ok: false, detail: `cannot load or attach raw_tp/sys_enter, sys_exit (optional: syscall metrics and \`syscalls\` need them): ${(err as Error).message.split('\n')[0]}` };
  } finally {
    session?.close();
  }
}
// -- end syscall latency --
