import test from 'ava';
import { CaptureEngine, type KernelSession, type KernelSessionOptions } from '../../src/capture/capture-engine';
import type { CaptureEvent } from '../../src/capture/events';
import { PROC_PID_INIT_INO, type PidNamespace } from '../../src/capture/pid-namespace';
import { ProcFs } from '../../src/util/procfs';
import { silentLogger } from '../../src/util/log';
import { FakeProc } from '../helpers/fake-proc';
import { batch, connRecord, dataRecord, procRecord } from '../helpers/records';

class FakeSession implements KernelSession {
  log: string[] = [];
  tgids = new Set<number>();
  closed = 0;
  /** setConnectionModes fails with this after storing `failAfter` requests. */
  failAfter: number | undefined;
  constructor(readonly opts: KernelSessionOptions) {}
  selectTgid(tgid: number, on: boolean) {
    this.log.push(`select ${tgid} ${on}`);
    if (on) this.tgids.add(tgid);
    else this.tgids.delete(tgid);
  }
  selectCgroup() {}
  setExecNames(names: string[]) {
    this.log.push(`exec-names ${names.join(',')}`);
  }
  attachAll() {
    this.log.push('attach');
    return ['tp_sys_enter_read'];
  }
  setConnectionModes(connIds: readonly number[], mode: number) {
    this.log.push(`modes ${connIds.join(',')} ${mode}`);
    if (this.failAfter !== undefined) {
      throw Object.assign(new Error('cannot store the capture-mode request: ENOMEM'), { code: 'ENOMEM', op: 'update', stored: this.failAfter });
    }
    return connIds.length;
  }
  start() {
    this.log.push('start');
  }
  stats() {
    return { kernel: [5n, 1n], batchesDelivered: 1, recordsDelivered: 5, batchesDropped: 0, recordsDropped: 0, bytesDropped: 0 };
  }
  flush() {
    this.log.push('flush');
  }
  close() {
    this.log.push('close');
    this.closed++;
  }
}

const HOST_PIDNS: PidNamespace = { ino: PROC_PID_INIT_INO, dev: 4n, host: true };

function engineWith(fp: FakeProc, selectors: ConstructorParameters<typeof CaptureEngine>[0]['selectors'], pidNamespace = HOST_PIDNS) {
  let session: FakeSession | undefined;
  const events: CaptureEvent[] = [];
  const engine = new CaptureEngine(
    { selectors, rescanMs: 0 },
    {
      openSession: (o) => (session = new FakeSession(o)),
      procfs: new ProcFs(fp.proc),
      logger: silentLogger,
      agentPid: 1,
      pidNamespace,
    },
    (e) => events.push(e),
  );
  return { engine, events, session: () => session! };
}

test('the kernel filter is filled before probes attach; config reaches the session', (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 10, exe: 'usr/bin/node', cmdline: ['node'] });
  try {
    const { engine, session } = engineWith(fp, [{ kind: 'exe', pattern: 'node' }]);
    t.deepEqual(engine.start(), ['tp_sys_enter_read']);
    t.deepEqual(session().log, ['exec-names node', 'select 10 true', 'start', 'attach']);
    t.like(session().opts.config, { agentTgid: 1, captureBytes: 16384, selectAll: false, followForks: true, pidnsDev: 0n, pidnsIno: 0n });
    engine.stop();
    engine.stop();
    t.is(session().closed, 1);
  } finally {
    fp.cleanup();
  }
});

test('drainAndStop: the reader hands over what it holds back before the last table reads and the close', async (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 10, exe: 'usr/bin/node', cmdline: ['node'] });
  try {
    const { engine, session } = engineWith(fp, [{ kind: 'pid', pid: 10 }]);
    engine.start();
    t.is(session().opts.batchDelayMs, 50);
    session().log = [];
    await engine.drainAndStop(() => session().log.push('last reads'));
    t.deepEqual(session().log, ['flush', 'last reads', 'close']);
  } finally {
    fp.cleanup();
  }
});

test('events of unselected processes are dropped and counted; exec updates selection', (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 10, exe: 'usr/bin/node', cmdline: ['node'] });
  try {
    const { engine, events } = engineWith(fp, [{ kind: 'exe', pattern: 'node' }]);
    engine.start();
    fp.add({ pid: 20, exe: 'usr/bin/node', cmdline: ['node'] });
    engine.onBatch(
      batch([
        connRecord({ tgid: 10, connId: 1 }),
        dataRecord({ tgid: 30, connId: 2, payload: Buffer.from('x') }),
        procRecord({ type: 'exec', tgid: 20, flags: 1, filename: fp.file('usr/bin/node') }),
        dataRecord({ tgid: 20, connId: 3, payload: Buffer.from('y') }),
        procRecord({ type: 'exit', tgid: 10 }),
        dataRecord({ tgid: 10, connId: 1, payload: Buffer.from('late') }),
      ]),
    );
    t.deepEqual(
      events.map((e) => `${e.type}:${e.tgid}`),
      ['open:10', 'exec:20', 'data:20', 'exit:10'],
    );
    const s = engine.stats();
    t.is(s.filteredInUserSpace, 2);
    t.is(s.kernel.events_sent, 5);
    t.is(s.kernel.events_lost, 1);
    engine.stop();
    t.is(engine.stats().kernel.events_sent, 5, 'counters survive stop for the exit summary');
  } finally {
    fp.cleanup();
  }
});

test('glob --exe selectors make the kernel report every exec; exact names do not', (t) => {
  const fp = new FakeProc();
  try {
    const exact = engineWith(fp, [{ kind: 'exe', pattern: 'node' }]);
    exact.engine.start();
    t.false(exact.session().opts.config.reportExecs);
    exact.engine.stop();
    const glob = engineWith(fp, [{ kind: 'exe', pattern: 'node*' }]);
    glob.engine.start();
    t.true(glob.session().opts.config.reportExecs);
    glob.engine.stop();
    const all = engineWith(fp, [{ kind: 'all' }]);
    all.engine.start();
    t.like(all.session().opts.config, { selectAll: true, reportExecs: false, followForks: false });
    all.engine.stop();
  } finally {
    fp.cleanup();
  }
});

test('a --pid that names no process fails start and closes the session', (t) => {
  const fp = new FakeProc();
  try {
    const { engine, session } = engineWith(fp, [{ kind: 'pid', pid: 4242 }]);
    t.throws(() => engine.start(), { message: 'no process with pid 4242' });
    t.is(session().closed, 1);
    t.false(engine.running);
  } finally {
    fp.cleanup();
  }
});

test('capture bytes are validated', (t) => {
  t.throws(
    () =>
      new CaptureEngine(
        { selectors: [{ kind: 'all' }], captureBytes: 20000 },
        { openSession: () => { throw new Error('unused'); }, procfs: new ProcFs('/nonexistent'), logger: silentLogger },
        () => {},
      ),
    { instanceOf: RangeError },
  );
});

test('muteConnections: one native call per list, mode muted; counted; a failed store counts what was not stored', (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 10, exe: 'usr/bin/node', cmdline: ['node'] });
  try {
    const { engine, session } = engineWith(fp, [{ kind: 'pid', pid: 10 }]);
    engine.muteConnections([1]);
    t.is(engine.stats().muteRequests, 0, 'nothing to mute before start');
    engine.start();
    engine.muteConnections([]);
    engine.muteConnections([7, 9, 12]);
    session().failAfter = 1;
    engine.muteConnections([20, 21, 22]);
    t.deepEqual(session().log.filter((l) => l.startsWith('modes')), ['modes 7,9,12 1', 'modes 20,21,22 1']);
    t.like(engine.stats(), { muteRequests: 4, muteRequestsFailed: 2 });
    engine.stop();
    engine.muteConnections([30]);
    t.is(session().log.filter((l) => l.startsWith('modes')).length, 2, 'a stopped engine asks nothing');
    t.like(engine.stats(), { muteRequests: 4, muteRequestsFailed: 2 });
  } finally {
    fp.cleanup();
  }
});

test('unmuteConnections: one native call per list, mode full; a failure does not throw; nothing before start or after stop', (t) => {
  const fp = new FakeProc();
  fp.add({ pid: 10, exe: 'usr/bin/node', cmdline: ['node'] });
  try {
    const { engine, session } = engineWith(fp, [{ kind: 'pid', pid: 10 }]);
    engine.unmuteConnections([1]);
    engine.start();
    engine.unmuteConnections([]);
    engine.unmuteConnections([7, 9]);
    session().failAfter = 0;
    t.notThrows(() => engine.unmuteConnections([20]));
    t.deepEqual(session().log.filter((l) => l.startsWith('modes')), ['modes 7,9 0', 'modes 20 0']);
    engine.stop();
    engine.unmuteConnections([30]);
    t.is(session().log.filter((l) => l.startsWith('modes')).length, 2);
  } finally {
    fp.cleanup();
  }
});

test('outside the initial pid namespace the kernel is given the namespace (dev as a kernel dev_t)', (t) => {
  const fp = new FakeProc();
  try {
    // st_dev 0x100103 is 1:259 in the C library's encoding: MKDEV(1, 259) for the kernel.
    const pod: PidNamespace = { ino: 4026532281n, dev: 0x100103n, host: false };
    const { engine, session } = engineWith(fp, [{ kind: 'all' }], pod);
    engine.start();
    t.like(session().opts.config, { selectAll: true, pidnsDev: (1n << 20n) | 259n, pidnsIno: 4026532281n });
    engine.stop();
  } finally {
    fp.cleanup();
  }
});
