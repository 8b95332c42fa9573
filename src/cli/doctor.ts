// `ebpf-otel doctor`: what this kernel and these privileges allow, and what
// the agent will use. Exits 0 when the agent can run, 1 otherwise. The
// general checks (kernel, privileges, the addon's probes) come first, then
// each feature's checks (one DoctorFeature each, in FEATURES).

import * as fs from 'node:fs';
import * as os from 'node:os';
import { loadNativeBinding, type NativeBinding, type NativeFeatures } from '../capture/native-binding';
import { describePidNamespace, readPidNamespace } from '../capture/pid-namespace';
import { BTF_PATH, CAP, capabilityAdvisories, effectiveCaps, hasCap, lockdownMode, missingCaps, type CapName } from '../capture/privileges';
import { defaultSessionOptions } from '../capture/session-defaults';
import { UsageError, parse, positiveInt } from '../config/flags';
import { tlsReportLines, tlsReports } from './doctor-tls';

interface Check {
  readonly name: string;
  readonly ok: boolean | undefined;
  readonly detail: string;
  /** The agent cannot run without it. */
  readonly required: boolean;
}

/** What a feature's checks look at: the addon, what it probed, where tracefs is. */
interface DoctorEnv {
  readonly binding: NativeBinding | undefined;
  readonly features: NativeFeatures | undefined;
  readonly tracefs: string | undefined;
  readonly exists: (path: string) => boolean;
}

/** One feature's part of the report: its checks and what it uses of the kernel. */
interface DoctorFeature {
  readonly uses: string;
  checks(env: DoctorEnv): Check[];
}

const check = (name: string, ok: boolean | undefined, detail: string, required = false): Check => ({ name, ok, detail, required });

/** Syscalls whose tracepoints socket capture attaches to (sys_enter_* and sys_exit_*). */
export const CAPTURE_SYSCALLS = [
  'read', 'write', 'readv', 'writev', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg',
  'recvmmsg', 'sendmmsg', 'connect', 'accept', 'accept4', 'close',
];

const socketCapture: DoctorFeature = {
  uses: 'socket capture from syscall tracepoints (read/write/send/recv families, connect, accept, close)',
  checks({ tracefs, exists }) {
    if (!tracefs) return [];
    const missing = CAPTURE_SYSCALLS.filter((s) => !exists(`${tracefs}/events/syscalls/sys_enter_${s}`));
    return [
      check(
        'syscall tracepoints',
        missing.length === 0,
        missing.length === 0 ? `${CAPTURE_SYSCALLS.length} syscalls` : `missing: ${missing.join(', ')} (needs CONFIG_FTRACE_SYSCALLS)`,
        true,
      ),
    ];
  },
};

const processLifecycle: DoctorFeature = {
  uses: 'process lifecycle from sched tracepoints',
  checks({ tracefs, exists }) {
    if (!tracefs) return [];
    const missing = ['sched_process_exec', 'sched_process_exit', 'sched_process_fork'].filter((t) => !exists(`${tracefs}/events/sched/${t}`));
    return [check('sched tracepoints', missing.length === 0, missing.length === 0 ? 'exec, exit, fork' : `missing: ${missing.join(', ')}`, true)];
  },
};

/** Socket tracepoints TCP health attaches to (the tcph_* programs; test/cli/doctor-tcp.test.ts checks them against bpf/). */
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

const tcpHealth: DoctorFeature = {
  uses: 'TCP health from sock/tcp tracepoints',
  checks({ tracefs, exists }) {
    if (!tracefs) return [];
    const tcp = tcpTracepointCheck(exists, tracefs);
    return [check('tcp tracepoints', tcp.ok, tcp.detail)];
  },
};

const syscallLatency: DoctorFeature = {
  uses: 'syscall latency from the raw tracepoints sys_enter/sys_exit (task storage, in-kernel histograms)',
  checks({ binding, features, tracefs }) {
    if (binding && tracefs && features?.rawTracepoint) {
      const r = syscallLatencyProbe(binding);
      return [check('syscall latency', r.ok, r.detail)];
    }
    if (features && !features.rawTracepoint) {
      return [check('syscall latency', false, 'raw tracepoints unavailable: no syscall latency metrics (optional)')];
    }
    return [];
  },
};

/**
 * Whether the syscalls group loads and its raw tracepoints attach here: a
 * session with that group only, attached and closed at once (a few ms of
 * tracing nothing: no process is selected).
 */
function syscallLatencyProbe(binding: NativeBinding): { ok: boolean; detail: string } {
  let session;
  try {
    session = new binding.SocketTraceSession({ ...defaultSessionOptions(), groups: { sockets: false, syscalls: true, tcp: false, tls: false, links: false } });
    const attached = session.attachAll().filter((p) => p.startsWith('syslat_'));
    return { ok: true, detail: `raw_tp/sys_enter and raw_tp/sys_exit attach (${attached.join(', ')})` };
  } catch (err) {
    return { ok: false, detail: `cannot load or attach raw_tp/sys_enter, sys_exit (optional: syscall metrics and \`syscalls\` need them): ${(err as Error).message.split('\n')[0]}` };
  } finally {
    session?.close();
  }
}

/** The features doctor reports on, in report order. */
const FEATURES: readonly DoctorFeature[] = [socketCapture, processLifecycle, tcpHealth, syscallLatency];

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' }, pid: { type: 'string', multiple: true }, 'no-tls': { type: 'boolean' } });
  const pids = (values.pid ?? []).map((p) => positiveInt('--pid', p, 4194304));
  if (values['no-tls'] && pids.length === 0) throw new UsageError('--no-tls only says how to report the processes of --pid');
  const checks: Check[] = [];
  const add = (name: string, ok: boolean | undefined, detail: string, required = false) => checks.push(check(name, ok, detail, required));

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
  const env: DoctorEnv = { binding, features, tracefs, exists: (p) => fs.existsSync(p) };
  for (const f of FEATURES) checks.push(...f.checks(env));
  // Per process: its TLS libraries and whether the agent probes them.
  for (const r of tlsReports(pids, { binding, features, disabled: values['no-tls'] === true })) {
    for (const l of tlsReportLines(r)) add(`tls pid ${r.pid}`, l.ok, l.detail);
  }
  const ok = checks.every((c) => !c.required || c.ok === true);
  const uses = [...FEATURES.map((f) => f.uses), 'events through one BPF ring buffer', 'no kprobes, no fentry'].join('; ');
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
