// `ebpf-otel doctor --pid P`: the TLS libraries of a process, and whether
// the agent probes them or why not (unsupported library, no uprobes, the tls
// programs missing from this build, turned off). When it can, it attaches
// the probes to each probeable file (OpenSSL, Go) and detaches them at
// once: "probed" then means the kernel took them, not only that the
// functions are there.

import { UprobeAttachManager } from '../capture/uprobes/attach-manager';
import { TlsDiscovery, type MappedTlsLibrary } from '../capture/tls/discovery';
import type { NativeBinding, NativeFeatures, SocketTraceSession } from '../capture/native-binding';
import { defaultSessionOptions } from '../capture/session-defaults';
import { ProcFs } from '../util/procfs';
import { silentLogger } from '../util/log';

export interface TlsProcessReport {
  readonly pid: number;
  readonly comm: string | undefined;
  /** Undefined: the process is gone or its maps cannot be read. */
  readonly libraries: ReadonlyArray<{ kind: string; file: string; version?: string; probed: boolean; why?: string }> | undefined;
}

/** Why nothing is probed whatever the library, or undefined. */
function globalReason(opts: { disabled: boolean; features: NativeFeatures | undefined; programsMissing: boolean }): string | undefined {
  if (opts.disabled) return 'disabled (--no-tls)';
  if (opts.features && !opts.features.uprobe) return 'uprobes unavailable in this kernel';
  if (opts.programsMissing) return 'this build lacks tls programs (uprobe_ssl_*, uprobe_go_tls_*)';
  return undefined;
}

export function tlsReports(pids: readonly number[], opts: { binding: NativeBinding | undefined; features: NativeFeatures | undefined; disabled: boolean }): TlsProcessReport[] {
  const procfs = new ProcFs();
  const discovery = new TlsDiscovery();
  const found = pids.map((pid) => {
    const maps = discovery.mappings(pid);
    return { pid, comm: procfs.comm(pid), libraries: maps ? discovery.libraries(pid, maps) : undefined };
  });
  const probeable = found.flatMap((p) => p.libraries ?? []).filter((l) => l.library.unprobedReason === undefined);
  let session: SocketTraceSession | undefined;
  let programsMissing = false;
  let sessionError: string | undefined;
  const attachChecked = new Map<string, { ok: boolean; why?: string }>();
  const reason0 = globalReason({ disabled: opts.disabled, features: opts.features, programsMissing: false });
  if (reason0 === undefined && probeable.length > 0 && opts.binding) {
    try {
      const base = defaultSessionOptions();
      const groups = { ...base.groups, sockets: false, tls: true };
      session = new opts.binding.SocketTraceSession({ ...base, groups });
      const names = new Set(session.programs().map((p) => p.name));
      programsMissing = !probeable.every((l) => l.library.probes.every((p) => names.has(p.program)));
      if (!programsMissing) {
        // No process is selected in this session: the probes run for nobody while attached.
        const s = session;
        const manager = new UprobeAttachManager(() => s, { maxFiles: Number.MAX_SAFE_INTEGER, logger: silentLogger });
        for (const l of unique(probeable)) {
          manager.setProcessFiles(1, [{ key: l.key, attachPath: l.attachPath, library: l.library }]);
          const st = manager.fileState(l.key);
          attachChecked.set(l.key, st?.state === 'attached' ? { ok: true, why: `${st.programs.length} probes attach` } : { ok: false, why: st?.reason ?? 'not attached' });
          manager.detachAll();
        }
      }
    } catch (err) {
      sessionError = (err as Error).message.split('\n')[0];
    } finally {
      session?.close();
    }
  }
  const reason = reason0 ?? globalReason({ disabled: false, features: undefined, programsMissing }) ?? (sessionError ? `cannot load the tls programs: ${sessionError}` : undefined);
  return found.map((p) => ({
    pid: p.pid,
    comm: p.comm,
    libraries: p.libraries?.map((l) => {
      const base = { kind: l.library.kind, file: l.path, ...(l.library.version ? { version: l.library.version } : {}) };
      if (l.library.unprobedReason !== undefined) return { ...base, probed: false, why: l.library.unprobedReason };
      if (reason !== undefined) return { ...base, probed: false, why: reason };
      const checked = attachChecked.get(l.key);
      if (!checked) return { ...base, probed: false, why: opts.binding ? 'not checked' : 'the native addon is not loaded' };
      return { ...base, probed: checked.ok, ...(checked.why ? { why: checked.why } : {}) };
    }),
  }));
}

function unique(libs: readonly MappedTlsLibrary[]): MappedTlsLibrary[] {
  const seen = new Map<string, MappedTlsLibrary>();
  for (const l of libs) if (!seen.has(l.key)) seen.set(l.key, l);
  return [...seen.values()];
}

/** One line per library (or one saying there is none) for the report. */
export function tlsReportLines(r: TlsProcessReport): Array<{ ok: boolean | undefined; detail: string }> {
  const who = `${r.comm ?? '?'}`;
  if (r.libraries === undefined) return [{ ok: false, detail: `${who}: no such process, or its maps cannot be read` }];
  if (r.libraries.length === 0) {
    return [{ ok: undefined, detail: `${who}: no TLS library found (OpenSSL, BoringSSL, GnuTLS, NSS, Go, Java are recognised; rustls and stripped static libraries are not visible)` }];
  }
  return r.libraries.map((l) => ({
    ok: l.probed,
    detail: `${who}: ${l.kind}${l.version ? ' ' + l.version : ''} ${l.file}: ${l.probed ? 'probed' : 'not probed'}${l.why ? ` (${l.why})` : ''}`,
  }));
}
