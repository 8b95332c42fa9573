import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import type { ExecEvent } from '../../src/capture/events';
import { ProcessSelection, type SelectionTarget, type Selector } from '../../src/capture/process-selection';
import { ProcFs } from '../../src/util/procfs';
import { silentLogger } from '../../src/util/log';
import { FakeProc } from '../helpers/fake-proc';

class FakeTarget implements SelectionTarget {
  tgids = new Set<number>();
  cgroups = new Set<bigint>();
  execNames: string[] = [];
  calls: string[] = [];
  selectTgid(tgid: number, on: boolean) {
    this.calls.push(`${on ? '+' : '-'}${tgid}`);
    if (on) this.tgids.add(tgid);
    else this.tgids.delete(tgid);
  }
  selectCgroup(id: bigint, on: boolean) {
    if (on) this.cgroups.add(id);
    else this.cgroups.delete(id);
  }
  setExecNames(names: string[]) {
    this.execNames = names;
  }
}

const AGENT = 999;

function setup(selectors: Selector[], build: (fp: FakeProc) => void) {
  const fp = new FakeProc();
  build(fp);
  const target = new FakeTarget();
  const sel = new ProcessSelection(selectors, target, new ProcFs(fp.proc), {
    agentPid: AGENT,
    logger: silentLogger,
    resolveCgroup: (p) => (p === '/sys/fs/cgroup/app' ? { id: 77n, relPath: '/app' } : undefined),
  });
  return { fp, target, sel };
}

function exec(tgid: number, filename: string, selectedByKernel = false): ExecEvent {
  return { type: 'exec', tgid, ppid: 1, tsNs: 1, cgroupId: 1n, comm: 'x', filename, selectedByKernel };
}

test('--exe python3 matches the real interpreter started as python3, not the pyenv shim run by bash', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3' }], (fp) => {
    fp.writeFile('usr/bin/python3.11', 'elf');
    fp.symlink('usr/bin/python3', fp.file('usr/bin/python3.11'));
    fp.writeFile('usr/bin/bash', 'elf');
    fp.writeFile('shims/python3', '#!/usr/bin/env bash\nexec ...');
    // Real interpreter, started by name through PATH.
    fp.add({ pid: 100, exe: 'usr/bin/python3.11', cmdline: ['python3', 'server.py'], env: { PATH: fp.file('usr/bin') } });
    // Started by absolute path.
    fp.add({ pid: 101, exe: 'usr/bin/python3.11', cmdline: [fp.file('usr/bin/python3'), '-m', 'http.server'] });
    // The shim: bash running a script named python3.
    fp.add({ pid: 102, exe: 'usr/bin/bash', cmdline: ['bash', fp.file('shims/python3'), 'x.py'] });
    fp.add({ pid: 103, exe: 'usr/bin/bash', cmdline: [fp.file('shims/python3'), 'x.py'] });
    // Something else that claims the name in argv[0].
    fp.add({ pid: 104, exe: 'usr/bin/bash', cmdline: ['python3'], env: { PATH: fp.file('usr/bin') } });
    // The agent itself never.
    fp.add({ pid: AGENT, exe: 'usr/bin/python3.11', cmdline: ['python3'] });
  });
  try {
    sel.start();
    t.deepEqual([...target.tgids].sort(), [100, 101]);
    t.deepEqual(target.execNames, ['python3'], 'exact names go to the kernel for exec-time selection');
    t.false(sel.isSelected(AGENT));
  } finally {
    fp.cleanup();
  }
});

test('globs match the executable basename and are not sent to the kernel', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3*' }], (fp) => {
    fp.add({ pid: 100, exe: 'usr/bin/python3.11', cmdline: ['python3.11'] });
    fp.add({ pid: 101, exe: 'usr/bin/node', cmdline: ['node'] });
  });
  try {
    sel.start();
    t.deepEqual([...target.tgids], [100]);
    t.deepEqual(target.execNames, []);
  } finally {
    fp.cleanup();
  }
});

test('--port selects the processes holding a listening socket on that port', (t) => {
  const { fp, target, sel } = setup([{ kind: 'port', port: 8080 }], (fp) => {
    fp.add({ pid: 200, exe: 'usr/bin/node', sockets: [5555, 6666], listening: [[8080, 5555], [9090, 7777]] });
    fp.add({ pid: 201, exe: 'usr/bin/node', sockets: [7777] });
    fp.add({ pid: 202, exe: 'usr/bin/node', sockets: [] });
  });
  try {
    sel.start();
    t.deepEqual([...target.tgids], [200]);
    t.deepEqual(sel.snapshot().get(200), ['port']);
  } finally {
    fp.cleanup();
  }
});

test('--cgroup selects the kernel cgroup id and processes in it or below', (t) => {
  const { fp, target, sel } = setup([{ kind: 'cgroup', path: '/sys/fs/cgroup/app' }], (fp) => {
    fp.add({ pid: 300, exe: 'usr/bin/a', cgroup: '/app' });
    fp.add({ pid: 301, exe: 'usr/bin/a', cgroup: '/app/worker' });
    fp.add({ pid: 302, exe: 'usr/bin/a', cgroup: '/application' });
  });
  try {
    sel.start();
    t.deepEqual([...target.cgroups], [77n]);
    t.deepEqual([...target.tgids].sort(), [300, 301]);
  } finally {
    fp.cleanup();
  }
});

test('unknown cgroup is a clear error', (t) => {
  const fp = new FakeProc();
  try {
    t.throws(
      () => new ProcessSelection([{ kind: 'cgroup', path: '/nope' }], new FakeTarget(), new ProcFs(fp.proc), { agentPid: 1, logger: silentLogger }),
      { message: /cgroup not found: \/nope/ },
    );
  } finally {
    fp.cleanup();
  }
});

test('--container matches the id in the cgroup path', (t) => {
  const id = 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
  const { fp, target, sel } = setup([{ kind: 'container', id: id.slice(0, 12) }], (fp) => {
    fp.add({ pid: 400, exe: 'usr/bin/a', cgroup: `/kubepods/pod1/cri-containerd-${id}.scope` });
    fp.add({ pid: 401, exe: 'usr/bin/a', cgroup: '/kubepods/pod1/other' });
  });
  try {
    sel.start();
    t.deepEqual([...target.tgids], [400]);
  } finally {
    fp.cleanup();
  }
});

function shimTree(fp: FakeProc) {
  fp.writeFile('usr/bin/python3.11', 'elf');
  fp.symlink('usr/bin/python3', fp.file('usr/bin/python3.11'));
  fp.writeFile('usr/bin/bash', 'elf');
  fp.writeFile('shims/python3', `#!${fp.file('usr/bin/bash')} -e\nexec python3 "$@"\n`);
}

test('exec: a kernel-selected shim is removed, the real program it execs is kept', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3' }], shimTree);
  try {
    sel.start();
    t.deepEqual([...target.tgids], []);
    // The shim execs: the kernel matched comm "python3" and selected it itself.
    fp.add({ pid: 500, exe: 'usr/bin/bash', cmdline: [fp.file('usr/bin/bash'), fp.file('shims/python3')] });
    target.tgids.add(500);
    sel.onExec(exec(500, fp.file('shims/python3'), true));
    t.false(sel.isSelected(500));
    t.false(target.tgids.has(500), 'user space removed the shim from the kernel filter');
    // The shim execs the real interpreter (same pid).
    fp.remove(500);
    fp.add({ pid: 500, exe: 'usr/bin/python3.11', cmdline: [fp.file('usr/bin/python3'), 'app.py'] });
    target.tgids.add(500);
    sel.onExec(exec(500, fp.file('usr/bin/python3'), true));
    t.true(sel.isSelected(500));
    t.true(target.tgids.has(500));
    t.deepEqual(sel.snapshot().get(500), ['exe']);
  } finally {
    fp.cleanup();
  }
});

test('exec: an event older than what /proc shows is never judged by the later program', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3' }], shimTree);
  try {
    sel.start();
    // By the time the shim's exec event is read, the process already runs Python.
    fp.add({ pid: 510, exe: 'usr/bin/python3.11', cmdline: [fp.file('usr/bin/python3'), 'app.py'] });
    target.tgids.add(510);
    sel.onExec(exec(510, fp.file('shims/python3'), true));
    t.false(sel.isSelected(510), "the shim's own events are not taken for Python's");
    sel.onExec(exec(510, fp.file('usr/bin/python3'), false));
    t.true(sel.isSelected(510));
    t.true(target.tgids.has(510));
  } finally {
    fp.cleanup();
  }
});

test('exec: a script whose #! names a matching interpreter is judged at once', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3' }], (fp) => {
    shimTree(fp);
    fp.writeFile('srv/app.py', `#!${fp.file('usr/bin/python3')}\nprint(1)\n`);
  });
  try {
    sel.start();
    fp.add({ pid: 520, exe: 'usr/bin/python3.11', cmdline: [fp.file('usr/bin/python3'), fp.file('srv/app.py')] });
    sel.onExec(exec(520, fp.file('srv/app.py')));
    t.true(sel.isSelected(520));
    t.true(target.tgids.has(520));
  } finally {
    fp.cleanup();
  }
});

test('exec: a process that no selector matches any more is deselected; --pid stays', (t) => {
  const { fp, target, sel } = setup(
    [{ kind: 'exe', pattern: 'node' }, { kind: 'pid', pid: 601 }],
    (fp) => {
      fp.add({ pid: 600, exe: 'usr/bin/node', cmdline: ['node'] });
      fp.add({ pid: 601, exe: 'usr/bin/ruby', cmdline: ['ruby'] });
    },
  );
  try {
    sel.start();
    t.deepEqual([...target.tgids].sort(), [600, 601]);
    fp.remove(600);
    fp.add({ pid: 600, exe: 'usr/bin/sh', cmdline: ['sh', '-c', 'ls'] });
    sel.onExec(exec(600, fp.file('usr/bin/sh')));
    t.false(target.tgids.has(600));
    fp.remove(601);
    fp.add({ pid: 601, exe: 'usr/bin/sh', cmdline: ['sh'] });
    sel.onExec(exec(601, fp.file('usr/bin/sh')));
    t.true(target.tgids.has(601));
  } finally {
    fp.cleanup();
  }
});

test('fork of a selected process: child kept with reason fork; exit forgets', (t) => {
  const { fp, target, sel } = setup([{ kind: 'pid', pid: 700 }], (fp) => {
    fp.add({ pid: 700, exe: 'usr/bin/python3.11', cmdline: ['gunicorn'] });
  });
  try {
    sel.start();
    target.tgids.add(701); // the kernel selected the child itself
    sel.onFork({ type: 'fork', tgid: 701, ppid: 700, tsNs: 1, cgroupId: 1n, comm: 'gunicorn', selectedByKernel: true });
    t.deepEqual(sel.snapshot().get(701), ['fork']);
    t.false(target.calls.includes('+701'), 'no redundant map update');
    sel.onExit({ type: 'exit', tgid: 701, ppid: 700, tsNs: 2, cgroupId: 1n, comm: 'gunicorn', exitCode: 0, signal: undefined });
    t.false(sel.isSelected(701));
    t.false(target.tgids.has(701));
  } finally {
    fp.cleanup();
  }
});

test('rescan drops processes that vanished (at the next rescan: their last events may still be on their way) and picks up new listeners', (t) => {
  const { fp, target, sel } = setup([{ kind: 'port', port: 8080 }], () => {});
  try {
    sel.start();
    t.is(target.tgids.size, 0);
    fp.add({ pid: 800, exe: 'usr/bin/node', sockets: [42], listening: [[8080, 42]] });
    sel.rescan();
    t.deepEqual([...target.tgids], [800]);
    fp.remove(800);
    sel.rescan();
    t.true(sel.isSelected(800), 'one rescan of grace');
    sel.rescan();
    t.deepEqual([...target.tgids], []);
    t.false(sel.isSelected(800));
  } finally {
    fp.cleanup();
  }
});

/** Counts what a rescan reads of /proc. */
class CountingProcFs extends ProcFs {
  listings = 0;
  statusReads: number[] = [];
  override pids(): number[] {
    this.listings++;
    return super.pids();
  }
  override status(pid: number) {
    this.statusReads.push(pid);
    return super.status(pid);
  }
}

test('with only pid selectors a rescan reads the selected processes alone, not all of /proc, and still drops the vanished', (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 700, exe: 'usr/bin/python3.11', cmdline: ['gunicorn'] });
  fp.add({ pid: 701, exe: 'usr/bin/python3.11', cmdline: ['gunicorn'] });
  for (let pid = 710; pid < 720; pid++) fp.add({ pid, exe: 'usr/bin/sh', cmdline: ['sh'] });
  const target = new FakeTarget();
  const procfs = new CountingProcFs(fp.proc);
  const sel = new ProcessSelection([{ kind: 'pid', pid: 700 }], target, procfs, { agentPid: AGENT, logger: silentLogger });
  try {
    sel.start();
    t.deepEqual([...target.tgids], [700]);
    target.tgids.add(701); // the kernel followed the fork itself
    sel.onFork({ type: 'fork', tgid: 701, ppid: 700, tsNs: 1, cgroupId: 1n, comm: 'gunicorn', selectedByKernel: true });
    procfs.statusReads = [];
    sel.rescan();
    t.is(procfs.listings, 0);
    t.deepEqual(procfs.statusReads, [700, 701]);
    t.deepEqual(sel.snapshot(), new Map([[700, ['pid']], [701, ['fork']]]));
    fp.remove(701);
    sel.rescan();
    t.true(sel.isSelected(701), 'one rescan of grace');
    sel.rescan();
    t.false(sel.isSelected(701));
    t.deepEqual([...target.tgids], [700]);
    t.deepEqual(target.calls, ['+700', '-701']);
  } finally {
    fp.cleanup();
  }
});

test('threads listed in /proc are not mistaken for processes', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'node' }], (fp) => {
    fp.add({ pid: 900, exe: 'usr/bin/node', cmdline: ['node'] });
    fp.add({ pid: 901, tgid: 900, exe: 'usr/bin/node', cmdline: ['node'] });
  });
  try {
    sel.start();
    t.deepEqual([...target.tgids], [900]);
  } finally {
    fp.cleanup();
  }
});

test('no selector is an error', (t) => {
  t.throws(() => new ProcessSelection([], new FakeTarget(), new ProcFs('/nonexistent'), { agentPid: 1, logger: silentLogger }), {
    message: /no process selector/,
  });
});

test('exec of a program already gone from /proc: the kernel name match stands (counted) for an exact name; never for a glob, another name, or a process /proc still shows', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'curl' }, { kind: 'exe', pattern: 'wge*' }], (fp) => {
    fp.writeFile('usr/bin/curl', 'elf');
    fp.writeFile('usr/bin/bash', 'elf');
  });
  const gone = (tgid: number, comm: string, selectedByKernel: boolean): ExecEvent => ({ ...exec(tgid, fp.file(`usr/bin/${comm}`), selectedByKernel), comm });
  try {
    sel.start();
    // A curl that made its request and exited before the batch reached user space.
    target.tgids.add(700);
    sel.onExec(gone(700, 'curl', true));
    t.true(sel.isSelected(700));
    t.deepEqual(sel.snapshot().get(700), ['exe']);
    t.is(sel.unconfirmedExecs, 1);
    // Not selected by the kernel (it did not match): nothing to keep.
    sel.onExec(gone(701, 'curl', false));
    t.false(sel.isSelected(701));
    // A glob is never matched by the kernel: a gone wget is not kept on a fork-follow selection.
    target.tgids.add(702);
    sel.onExec(gone(702, 'wget', true));
    t.false(sel.isSelected(702));
    // Alive: judged by /proc as ever (bash named curl is not curl).
    fp.add({ pid: 703, exe: 'usr/bin/bash', cmdline: ['curl'] });
    target.tgids.add(703);
    sel.onExec({ ...exec(703, fp.file('usr/bin/bash'), true), comm: 'curl' });
    t.false(sel.isSelected(703));
    t.is(sel.unconfirmedExecs, 1);
  } finally {
    fp.cleanup();
  }
});

test('a selected process seen exiting by a rescan (a zombie) stays selected until its exit event', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'curl' }], (fp) => fp.writeFile('usr/bin/curl', 'elf'));
  try {
    fp.add({ pid: 810, exe: 'usr/bin/curl', cmdline: ['curl'] });
    sel.start();
    t.true(sel.isSelected(810));
    // It exited; its parent has not reaped it yet: /proc lists it without an exe.
    fp.remove(810);
    fp.add({ pid: 810, cmdline: [] });
    fs.rmSync(path.join(fp.proc, '810', 'exe'), { force: true });
    fs.writeFileSync(path.join(fp.proc, '810', 'stat'), '810 (curl) Z 1 810 810 0 -1 4228108 0 0 0 0 0 0 0 0 20 0 1 0 100\n');
    sel.rescan();
    t.true(sel.isSelected(810), 'its last events are still to be delivered');
    sel.onExit({ type: 'exit', tgid: 810, tid: 810, ppid: 1, tsNs: 5, cgroupId: 1n, comm: 'curl', exitCode: 0 } as never);
    t.false(sel.isSelected(810));
    t.deepEqual([...target.tgids], []);
  } finally {
    fp.cleanup();
  }
});

test('a process in the middle of an exec (exe link unreadable for a moment, alive) is judged as ever, never kept on the kernel name match', (t) => {
  const { fp, target, sel } = setup([{ kind: 'exe', pattern: 'python3' }], (fp) => fp.writeFile('usr/bin/bash', 'elf'));
  try {
    sel.start();
    // The shim named python3 is exec'ing the real interpreter: alive (state R, no PF_EXITING), no exe link right now.
    fp.add({ pid: 820, cmdline: ['python3'] });
    fs.rmSync(path.join(fp.proc, '820', 'exe'), { force: true });
    fs.writeFileSync(path.join(fp.proc, '820', 'stat'), '820 (python3) R 1 820 820 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 100\n');
    target.tgids.add(820);
    sel.onExec({ ...exec(820, fp.file('shims/python3'), true), comm: 'python3' });
    t.false(sel.isSelected(820), 'not kept: /proc cannot judge it, but it is not gone');
    t.is(sel.unconfirmedExecs, 0);
  } finally {
    fp.cleanup();
  }
});
