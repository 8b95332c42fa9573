// eBPF: the syscalls group at the native level: histograms read and deleted
// by key, and the deselection epoch: deselecting a live process leaves the
// calls then in flight unmeasured (their starts may be stale), while
// forgetting a process that already exited changes nothing.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';

import { KERNEL_STATS } from '../../src/capture/layout';
import { loadNativeBinding, type SocketTraceSession } from '../../src/capture/native-binding';
import { decodeSyscallHistograms, encodeSyscallHistKeys } from '../../src/capture/syscall-histograms';
import { HOST_SYSCALL_ARCH, syscallNumber } from '../../src/capture/syscall-names';
import { ebpfTest } from '../helpers/ebpf';
import { openSession, sleep, waitFor } from './support';

const test = ebpfTest.serial;
const READ = syscallNumber('read', HOST_SYSCALL_ARCH)!;
const NO_START = KERNEL_STATS.indexOf('syslat_no_start');

/** A Python child: says hello, then per line on stdin makes 5 pipe reads and answers. */
const CHILD = `
import os, sys
r, w = os.pipe()
print('hello', flush=True)
for line in sys.stdin:
    os.write(w, b'x' * 5)
    for _ in range(5):
        os.read(r, 1)
    print('done', flush=True)
`;

interface Child {
  child: ChildProcess;
  pid: number;
  next(): Promise<string>;
}

async function child(): Promise<Child> {
  const c = spawn('/usr/bin/python3', ['-c', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
  const it = readline.createInterface({ input: c.stdout! })[Symbol.asyncIterator]();
  const next = async () => (await it.next()).value as string;
  await next();
  return { child: c, pid: c.pid!, next };
}

function syscallsSession(): SocketTraceSession {
  return openSession(loadNativeBinding(), {
    groups: { sockets: false, syscalls: true, tcp: false, tls: false },
    syscalls: { slowNs: 0, slowCostNs: 0, sigreturnNr: syscallNumber('rt_sigreturn', HOST_SYSCALL_ARCH)!, maxHistograms: 1024, fdSyscalls: [] },
  });
}

/** Waits until `pid` is blocked in read(2) (its stdin). */
async function blockedInRead(pid: number): Promise<boolean> {
  return waitFor(() => fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0] === String(READ), 3000, 10);
}

function reads(session: SocketTraceSession, pid: number): number {
  return decodeSyscallHistograms(session.readSyscallHistograms())
    .filter((h) => h.tgid === pid && h.nr === READ && h.err === 0)
    .reduce((n, h) => n + Number(h.count), 0);
}

test('histograms: reads counted per process; delete by key; a bad key buffer is a TypeError', async (t) => {
  const a = await child();
  const session = syscallsSession();
  try {
    session.selectTgid(a.pid, true);
    session.attachAll();
    session.start();
    t.true(await blockedInRead(a.pid), 'blocked in read on stdin, entered before attach');
    a.child.stdin!.write('go\n');
    t.is(await a.next(), 'done');
    // The stdin read was in flight at attach (not measured); the 5 pipe reads are.
    t.is(reads(session, a.pid), 5);
    t.true(session.stats().kernel[NO_START]! >= 1n);
    const mine = decodeSyscallHistograms(session.readSyscallHistograms()).filter((h) => h.tgid === a.pid);
    t.is(session.deleteSyscallHistograms(encodeSyscallHistKeys(mine)), mine.length);
    t.is(session.deleteSyscallHistograms(encodeSyscallHistKeys(mine)), 0, 'already gone: skipped');
    t.is(reads(session, a.pid), 0);
    t.throws(() => session.deleteSyscallHistograms(Buffer.alloc(5)), { instanceOf: TypeError, message: /12 bytes each/ });
  } finally {
    session.close();
    a.child.kill();
  }
});

test('deselecting a live process: calls in flight elsewhere go unmeasured; forgetting an exited one changes nothing', async (t) => {
  const a = await child();
  const b = await child();
  const c = await child();
  const session = syscallsSession();
  try {
    for (const p of [a, b, c]) session.selectTgid(p.pid, true);
    session.attachAll();
    session.start();
    // A first read on stdin that enters while attached: recorded.
    a.child.stdin!.write('go\n');
    t.is(await a.next(), 'done');
    t.true(await blockedInRead(a.pid));
    const before = reads(session, a.pid);

    // c exits: the kernel drops it; forgetting it in user space removes nothing.
    c.child.kill();
    await new Promise((r) => c.child.once('exit', r));
    await sleep(50);
    session.selectTgid(c.pid, false);
    a.child.stdin!.write('go\n');
    t.is(await a.next(), 'done');
    t.is(reads(session, a.pid) - before, 6, 'the blocked stdin read and 5 pipe reads, all measured');

    // b is deselected while alive: a's blocked read may have a stale start now.
    t.true(await blockedInRead(a.pid));
    const noStart = session.stats().kernel[NO_START]!;
    session.selectTgid(b.pid, false);
    a.child.stdin!.write('go\n');
    t.is(await a.next(), 'done');
    t.is(reads(session, a.pid) - before, 6 + 5, 'the read in flight across the deselection is not measured');
    t.is(session.stats().kernel[NO_START]! - noStart, 1n, 'and counted');
  } finally {
    session.close();
    for (const p of [a, b, c]) p.child.kill();
  }
});
