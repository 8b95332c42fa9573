import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CaptureSetupError } from '../../src/capture/kernel-session';
import {
  PROC_PID_INIT_INO,
  describePidNamespace,
  kernelDevT,
  pidNamespaceConfig,
  readPidNamespace,
} from '../../src/capture/pid-namespace';

/** A fake procfs root where `self` links to `selfName` and `<pid>/ns/pid` exists. */
function fakeProc(t: { teardown(fn: () => void): void }, pid: number, selfName: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pidns-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, String(pid), 'ns'), { recursive: true });
  fs.writeFileSync(path.join(root, String(pid), 'ns', 'pid'), '');
  fs.symlinkSync(selfName, path.join(root, 'self'));
  return root;
}

test('kernelDevT: the C library st_dev encoding to MAJOR << 20 | MINOR', (t) => {
  t.is(kernelDevT(4n), 4n, 'nsfs 0:4 reads the same in both');
  t.is(kernelDevT(0x0803n), (8n << 20n) | 3n, '8:3');
  t.is(kernelDevT(0x100103n), (1n << 20n) | 259n, 'a minor above 255');
  t.is(kernelDevT(0xfff00n | 0xffn | 0xfff00000n), (0xfffn << 20n) | 0xfffffn, 'largest kernel dev_t');
  t.throws(() => kernelDevT(1n << 44n), { instanceOf: RangeError }, 'a 13-bit major');
  t.throws(() => kernelDevT(0x100000000n), { instanceOf: RangeError }, 'a 21-bit minor');
});

test('pidNamespaceConfig: zero in the initial namespace, translated elsewhere', (t) => {
  t.deepEqual(pidNamespaceConfig({ ino: PROC_PID_INIT_INO, dev: 4n, host: true }), { pidnsDev: 0n, pidnsIno: 0n });
  t.deepEqual(pidNamespaceConfig({ ino: 4026532281n, dev: 4n, host: false }), { pidnsDev: 4n, pidnsIno: 4026532281n });
  t.throws(() => pidNamespaceConfig({ ino: 0n, dev: 4n, host: false }), { instanceOf: RangeError });
  t.throws(() => pidNamespaceConfig({ ino: 1n << 32n, dev: 4n, host: false }), { instanceOf: RangeError });
});

test('describePidNamespace: the doctor and run line', (t) => {
  t.is(describePidNamespace({ ino: PROC_PID_INIT_INO, dev: 4n, host: true }), 'host');
  t.is(
    describePidNamespace({ ino: 4026532281n, dev: 4n, host: false }),
    "4026532281 (not the host's: pids are translated in the kernel; only processes of this namespace are traced)",
  );
});

test('readPidNamespace: the namespace of this very process, as /proc/self/status tells it', (t) => {
  const ns = readPidNamespace();
  const st = fs.statSync('/proc/self/ns/pid', { bigint: true });
  t.is(ns.ino, st.ino);
  t.is(ns.dev, st.dev);
  t.is(`pid:[${ns.ino}]`, fs.readlinkSync('/proc/self/ns/pid'));
  // NSpid lists one pid per namespace level: one entry exactly in the initial namespace.
  const levels = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]!.trim().split(/\s+/).length;
  t.is(ns.host, levels === 1);
});

test('readPidNamespace: a /proc of another namespace is refused with one sentence', (t) => {
  const ok = fakeProc(t, 123, '123');
  const ns = readPidNamespace(ok, 123);
  t.false(ns.host);
  t.is(ns.ino, fs.statSync(path.join(ok, '123', 'ns', 'pid'), { bigint: true }).ino);

  const host = fakeProc(t, 123, '123');
  const foreign = readPidNamespace.bind(undefined, host, 7);
  t.throws(foreign, {
    instanceOf: CaptureSetupError,
    message: `${host} belongs to another pid namespace than the agent (it calls the agent 123, the agent is 7): mount the namespace's own procfs there`,
  });
  t.throws(() => readPidNamespace(path.join(host, 'missing'), 7), { instanceOf: CaptureSetupError, message: /cannot read the agent's pid namespace/ });
});
