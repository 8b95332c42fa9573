// eBPF: SocketTraceSession lifecycle, attachment, selection maps and errors,
// against the real socket_trace object. Needs root (see test/helpers/ebpf.ts).

import * as fs from 'node:fs';

import { isNativeError, loadNativeBinding, type NativeError } from '../../src/capture/native-binding';
import { ebpfTest } from '../helpers/ebpf';
import { linkedProgramNames, loadedPrograms, openSession, sessionOptions } from './support';

function nativeError(t: { truthy(v: unknown, m?: string): unknown }, e: unknown): NativeError {
  t.truthy(isNativeError(e), `expected a native error, got ${String(e)}`);
  return e as NativeError;
}

ebpfTest('open, load, attachAll, close: links exist while attached and none after', (t) => {
  const binding = loadNativeBinding();
  t.is(binding.ensureTracefs().endsWith('tracing'), true);
  const session = openSession(binding);
  const programs = session.programs();
  const progIds = programs.map((p) => p.id);
  t.true(programs.length > 0);
  t.true(progIds.every((id) => id > 0));

  const attached = session.attachAll();
  t.deepEqual(attached, programs.filter((p) => p.autoAttach).map((p) => p.name));
  t.true(attached.length > 0);
  t.deepEqual(session.links().map((l) => l.program), attached);
  t.deepEqual(linkedProgramNames(progIds), [...attached].sort());

  session.start();
  session.close();
  t.true(session.closed);
  t.deepEqual(linkedProgramNames(progIds), [], 'links left after close');
  t.deepEqual(loadedPrograms(progIds), [], 'programs left loaded after close');
});

ebpfTest('close is idempotent; a closed session throws ERR_SESSION_CLOSED', (t) => {
  const session = openSession(loadNativeBinding());
  session.close();
  t.notThrows(() => session.close());
  const uses: Array<[string, () => unknown]> = [
    ['attachAll', () => session.attachAll()],
    ['start', () => session.start()],
    ['stats', () => session.stats()],
    ['links', () => session.links()],
    ['selectTgid', () => session.selectTgid(1, true)],
    ['setExecNames', () => session.setExecNames(['x'])],
    ['detach', () => session.detach(1)],
  ];
  for (const [op, use] of uses) {
    const e = nativeError(t, t.throws(use));
    t.is(e.code, 'ERR_SESSION_CLOSED');
    t.is(e.op, op);
    t.regex(e.message, /session is closed/);
  }
});

ebpfTest('attachTracepoint, detach and their errors', (t) => {
  const session = openSession(loadNativeBinding());
  try {
    // sys_enter_pwrite64 has write's arguments and more: the kernel lets
    // tp_sys_enter_write read its context (a tracepoint with fewer fields
    // would be refused with EACCES).
    const prog = session.programs().find((p) => p.name === 'tp_sys_enter_write');
    t.truthy(prog);
    const id = session.attachTracepoint(prog!.name, 'syscalls', 'sys_enter_pwrite64');
    t.deepEqual(session.links(), [{ id, program: prog!.name, target: 'tracepoint/syscalls/sys_enter_pwrite64' }]);
    t.deepEqual(linkedProgramNames([prog!.id]), [prog!.name]);
    session.detach(id);
    t.deepEqual(session.links(), []);
    t.deepEqual(linkedProgramNames([prog!.id]), []);

    const missing = nativeError(t, t.throws(() => session.attachTracepoint(prog!.name, 'syscalls', 'sys_enter_nope')));
    t.is(missing.code, 'ENOENT');
    t.is(missing.op, 'attach');
    t.regex(missing.message, new RegExp(`${prog!.name}.*sys_enter_nope`));
    t.true((missing.libbpfLog ?? []).some((line) => line.includes('sys_enter_nope')), 'libbpf log quoted');

    const noProgram = nativeError(t, t.throws(() => session.attachTracepoint('no_such_prog', 'syscalls', 'sys_enter_read')));
    t.is(noProgram.code, 'ENOENT');

    const unknownLink = nativeError(t, t.throws(() => session.detach(999)));
    t.is(unknownLink.code, 'ENOENT');
    t.is(unknownLink.op, 'detach');

    session.attachAll();
    t.is(nativeError(t, t.throws(() => session.attachAll())).code, 'EALREADY');
  } finally {
    session.close();
  }
});

ebpfTest('setExecNames takes names up to 15 bytes and rejects longer ones', (t) => {
  const session = openSession(loadNativeBinding());
  try {
    t.notThrows(() => session.setExecNames(['curl', 'fifteen-bytes15', 'node']));
    t.notThrows(() => session.setExecNames(['node'])); // replaces the set
    for (const name of ['sixteen-bytes-16', 'é'.repeat(8), '']) {
      const e = nativeError(t, t.throws(() => session.setExecNames(['ok', name])));
      t.true(e instanceof RangeError);
      t.is(e.code, 'ERR_INVALID_ARG_VALUE');
      t.is(e.op, 'setExecNames');
    }
    t.is(nativeError(t, t.throws(() => session.setExecNames('node' as unknown as string[]))).code, 'ERR_INVALID_ARG_TYPE');
    t.notThrows(() => session.setExecNames([]));
    t.notThrows(() => session.selectTgid(process.pid, true));
    t.notThrows(() => session.selectTgid(process.pid, false));
    t.notThrows(() => session.selectTgid(process.pid, false)); // absent: no error
    t.notThrows(() => session.selectCgroup(1n, true));
    t.notThrows(() => session.selectCgroup(1n, false));
    t.is(nativeError(t, t.throws(() => session.selectCgroup(-1n, true))).code, 'ERR_INVALID_ARG_VALUE');
  } finally {
    session.close();
  }
});

ebpfTest('ring buffer size must be a power of two multiple of the page size', (t) => {
  const binding = loadNativeBinding();
  for (const ringBufferBytes of [5000, 3 * 4096, 2048, 0, 1.5 * (1 << 20)]) {
    const e = nativeError(t, t.throws(() => new binding.SocketTraceSession(sessionOptions({ ringBufferBytes }))));
    t.true(e instanceof RangeError, `${ringBufferBytes}`);
    t.is(e.code, 'ERR_INVALID_ARG_VALUE');
    t.is(e.op, 'SocketTraceSession');
    t.regex(e.message, /ringBufferBytes must be a power of two and a multiple of the page size/);
  }
  const ok = new binding.SocketTraceSession(sessionOptions({ ringBufferBytes: 1 << 16 }));
  ok.close();
  t.pass();
});

ebpfTest('constructor rejects missing or mistyped options', (t) => {
  const binding = loadNativeBinding();
  const { onBatch: _onBatch, ...noCallback } = sessionOptions();
  const e1 = nativeError(t, t.throws(() => new binding.SocketTraceSession(noCallback as never)));
  t.is(e1.code, 'ERR_INVALID_ARG_TYPE');
  t.regex(e1.message, /onBatch/);
  const base = sessionOptions();
  const e2 = nativeError(t, t.throws(() => new binding.SocketTraceSession({ ...base, config: { ...base.config, captureBytes: 16385 } })));
  t.is(e2.code, 'ERR_INVALID_ARG_VALUE');
  t.regex(e2.message, /captureBytes/);
  const e3 = nativeError(t, t.throws(() => new binding.SocketTraceSession({ ...base, config: { ...base.config, pidnsIno: 4026531836 as never } })));
  t.is(e3.code, 'ERR_INVALID_ARG_TYPE');
  t.regex(e3.message, /config\.pidnsIno must be a bigint/);
});

ebpfTest('probeFeatures: tracepoints and ringbuf yes; kprobe as the PMU says', (t) => {
  const features = loadNativeBinding().probeFeatures();
  t.log(JSON.stringify(features));
  t.true(features.btf);
  t.true(features.ringbuf);
  t.true(features.tracepoint);
  t.true(features.rawTracepoint);
  // This machine has no kprobe PMU (not compiled in): false here.
  t.is(features.kprobe, fs.existsSync('/sys/bus/event_source/devices/kprobe'));
  t.is(features.uprobe, fs.existsSync('/sys/bus/event_source/devices/uprobe'));
  t.is(typeof features.fentry, 'boolean');
  for (const name of ['btf', 'ringbuf', 'tracepoint', 'rawTracepoint', 'kprobe', 'uprobe', 'fentry'] as const) {
    t.is(typeof features.reasons[name] === 'string', !features[name], name);
  }
  t.regex(loadNativeBinding().libbpfVersion(), /^v\d+\.\d+/);
  t.is(typeof loadNativeBinding().releaseFreeMemory(), 'boolean');
});

ebpfTest('program groups: a group not asked for is neither loaded nor attached; lifecycle programs always are', (t) => {
  const binding = loadNativeBinding();
  const all = openSession(binding);
  const socketPrograms = all.programs().map((p) => p.name);
  all.close();
  t.true(socketPrograms.includes('tp_sys_enter_read'));

  const session = openSession(binding, { groups: { sockets: false, syscalls: false, tcp: false, tls: false } });
  try {
    const names = session.programs().map((p) => p.name).sort();
    t.deepEqual(names, socketPrograms.filter((n) => n.includes('_sched_')).sort());
    t.true(names.length >= 3, 'exec, exit and fork programs');
    t.deepEqual(session.attachAll().sort(), names);
  } finally {
    session.close();
  }
});
