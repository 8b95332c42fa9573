import test from 'ava';
import { UprobeAttachManager, type FileUse } from '../../../src/capture/uprobes/attach-manager';
import { OPENSSL_PROBES, opensslProbes, type TlsLibrary } from '../../../src/capture/tls/library';
import type { Logger } from '../../../src/util/log';
import { FakeKernelSession } from '../../helpers/fake-session';

const openssl = (symbols: readonly string[], offsets?: ReadonlyMap<string, number>): TlsLibrary => ({ kind: 'openssl', symbols: new Set(symbols), probes: opensslProbes(new Set(symbols), offsets) });
const ALL = openssl(OPENSSL_PROBES.map((p) => p.symbol));
/** OpenSSL 1.1.0: no _ex functions. */
const NO_EX = openssl(['SSL_read', 'SSL_write', 'SSL_do_handshake', 'SSL_shutdown', 'SSL_free']);

const use = (key: string, library = ALL): FileUse => ({ key, attachPath: `/proc/1/root/lib/${key}.so`, library });

function setup(maxFiles = 64) {
  const session = new FakeKernelSession();
  const warnings: string[] = [];
  const logger: Logger = { debug: () => {}, info: () => {}, warn: (m) => warnings.push(m), error: () => {}, warnOnce: (_k, m) => warnings.push(m) };
  let now = 0;
  const manager = new UprobeAttachManager(() => session, { maxFiles, logger, monotonicNs: () => (now += 1000) });
  return { session, manager, warnings };
}

test('one attachment per file whatever the number of processes; detached after the last one exits and a settle', (t) => {
  const { session, manager } = setup();
  manager.setProcessFiles(100, [use('a')]);
  manager.setProcessFiles(200, [use('a')]);
  t.is(session.uprobes.size, 11);
  t.is(session.uprobeAttachCalls, 11);
  t.deepEqual(
    [...session.uprobes.values()].map((u) => `${u.program} ${u.symbol} ${u.retprobe}`),
    OPENSSL_PROBES.map((p) => `${p.program} ${p.symbol} ${p.retprobe}`),
  );
  t.true([...session.uprobes.values()].every((u) => u.path === '/proc/1/root/lib/a.so'));
  manager.processExited(100);
  manager.settle();
  t.is(session.uprobes.size, 11, 'still used by 200');
  manager.processExited(200);
  t.is(session.uprobes.size, 11, 'detached at the settle, not at the exit');
  manager.settle();
  t.is(session.uprobes.size, 0);
  t.like(manager.stats(), { files: 0, attaches: 1, detaches: 1, attachFailures: 0 });
});

test('a process that stops mapping a file (dlclose, exec) is no longer its user', (t) => {
  const { session, manager } = setup();
  manager.setProcessFiles(100, [use('a'), use('b')]);
  t.is(manager.stats().files, 2);
  manager.setProcessFiles(100, [use('b')]);
  manager.settle();
  t.deepEqual(manager.snapshot().map((f) => [f.key, f.users]), [['b', [100]]]);
  t.is(session.uprobes.size, 11);
});

test('at the file offsets the library gives, by name for the others', (t) => {
  const { session, manager } = setup();
  const offsets = new Map([['SSL_read', 0x35430], ['SSL_write', 0x35980]]);
  manager.setProcessFiles(1, [use('a', openssl(OPENSSL_PROBES.map((p) => p.symbol), offsets))]);
  const at = (program: string) => [...session.uprobes.values()].find((u) => u.program === program)!.symbol;
  t.is(at('uprobe_ssl_read'), String(0x35430));
  t.is(at('uretprobe_ssl_read'), String(0x35430));
  t.is(at('uprobe_ssl_write'), String(0x35980));
  t.is(at('uprobe_ssl_free'), 'SSL_free');
});

test('without the _ex symbols (OpenSSL 1.1.0): seven probes', (t) => {
  const { session, manager } = setup();
  manager.setProcessFiles(1, [use('old', NO_EX)]);
  t.deepEqual([...session.uprobes.values()].map((u) => u.program).sort(), [
    'uprobe_ssl_do_handshake', 'uprobe_ssl_free', 'uprobe_ssl_read', 'uprobe_ssl_shutdown', 'uprobe_ssl_write', 'uretprobe_ssl_read', 'uretprobe_ssl_write',
  ]);
});

test('the bound: files over max_files counted once and logged once, probed when a place frees', (t) => {
  const { session, manager, warnings } = setup(2);
  manager.setProcessFiles(1, [use('a'), use('b'), use('c')]);
  manager.setProcessFiles(2, [use('c'), use('d')]);
  t.like(manager.stats(), { files: 2, filesOverBound: 2 });
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /2 files probed already \(tls\.max_files\)/);
  t.is(session.uprobes.size, 22);
  t.is(manager.fileState('c')?.state, 'over_bound');
  // 'a' and 'b' lose their user: c and d take their places.
  manager.setProcessFiles(1, [use('c')]);
  manager.settle();
  t.deepEqual(manager.snapshot().map((f) => [f.key, f.state]), [['c', 'attached'], ['d', 'attached']]);
  t.like(manager.stats(), { files: 2, filesOverBound: 2, attaches: 4, detaches: 2 });
  t.is(warnings.length, 1);
});

test('a required probe that fails: nothing of the file stays attached, counted and logged once per file', (t) => {
  const { session, manager, warnings } = setup();
  session.failAttach = (program, path) => (program === 'uretprobe_ssl_write' && path.includes('/bad.so') ? new Error('Invalid argument') : undefined);
  manager.setProcessFiles(1, [use('bad'), use('good')]);
  manager.setProcessFiles(2, [use('bad')]);
  t.is(manager.fileState('bad')?.state, 'failed');
  t.regex(manager.fileState('bad')?.reason ?? '', /Invalid argument/);
  t.is(session.uprobes.size, 11, 'only the good file');
  t.true([...session.uprobes.values()].every((u) => u.path.endsWith('/good.so')));
  t.like(manager.stats(), { files: 1, attachFailures: 1 });
  t.is(warnings.filter((w) => w.includes('bad.so')).length, 1);
  // Not retried while in use.
  const calls = session.uprobeAttachCalls;
  manager.settle();
  t.is(session.uprobeAttachCalls, calls);
});

test('an optional probe that fails: the file is probed without it, counted', (t) => {
  const { session, manager } = setup();
  session.failAttach = (program) => (program === 'uprobe_ssl_free' ? new Error('no such symbol') : undefined);
  manager.setProcessFiles(1, [use('a')]);
  t.is(manager.fileState('a')?.state, 'attached');
  t.is(session.uprobes.size, 10);
  t.like(manager.stats(), { files: 1, optionalFailures: 1, attachFailures: 0 });
});

test('detachAll at shutdown; attach time measured', (t) => {
  const { session, manager } = setup();
  manager.setProcessFiles(1, [use('a'), use('b')]);
  t.true(manager.stats().attachNs > 0);
  t.true(manager.stats().slowestAttachNs > 0);
  manager.detachAll();
  t.is(session.uprobes.size, 0);
  t.is(manager.stats().files, 0);
});
