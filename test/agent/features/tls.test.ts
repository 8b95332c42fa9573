// The tls feature in the agent `run` builds, on a fake kernel session and a
// fake /proc whose maps name real files of this machine (node links OpenSSL
// in; libssl.so.3): what it attaches, when, and when it lets go.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAgent } from '../../../src/agent/agent';
import { TLS_RESCAN_MS, type TlsFeature } from '../../../src/agent/features/tls';
import { parseRunArgs } from '../../../src/cli/run-command';
import { PROTOCOLS } from '../../../src/protocols/registry';
import { FakeProc } from '../../helpers/fake-proc';
import { FakeKernelSession, fakeKernelDeps } from '../../helpers/fake-session';
import { batch, procRecord } from '../../helpers/records';

const NODE = fs.realpathSync(process.execPath);
const LIBSSL = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
const LIBCRYPTO = '/usr/lib/x86_64-linux-gnu/libcrypto.so.3';
const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';

const mapsLine = (i: number, file: string, perms = 'r-xp') => {
  const ino = fs.statSync(file).ino;
  const start = (0x7f0000000000 + i * 0x100000).toString(16);
  const end = (0x7f0000000000 + i * 0x100000 + 0x1000).toString(16);
  return `${start}-${end} ${perms} 00000000 fd:01 ${ino}   ${file}\n`;
};

function setup(t: import('ava').ExecutionContext, flags: string[] = [], pids = [100, 102]) {
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  for (const pid of pids) fp.add({ pid, exe: 'usr/bin/app', cmdline: ['app'] });
  const writeMaps = (pid: number, files: string[]) =>
    fs.writeFileSync(path.join(fp.proc, String(pid), 'maps'), files.map((f, i) => mapsLine(i, f)).join('') + mapsLine(99, LIBC, 'r--p'));
  const options = parseRunArgs([...pids.flatMap((p) => ['--pid', String(p)]), '--no-tcp-metrics', '--no-flow-metrics', ...flags], { env: {}, protocols: PROTOCOLS });
  if (options === 'help') throw new Error('unreachable');
  const session = new FakeKernelSession();
  let nowNs = 0;
  const agent = createAgent({ ...options, capture: { ...options.capture, rescanMs: 0 } }, { ...fakeKernelDeps(session, fp.proc, PROTOCOLS), monotonicNs: () => nowNs });
  const tls = agent.features.find((f) => f.name === 'tls') as TlsFeature | undefined;
  const tick = () => {
    nowNs += TLS_RESCAN_MS * 1e6;
    agent.tick(nowNs);
  };
  const paths = () => [...new Set([...session.uprobes.values()].map((u) => u.path))].sort();
  const root = (pid: number, file: string) => `${fp.proc}/${pid}/root${file}`;
  return { fp, agent, session, tls, writeMaps, tick, paths, root };
}

test('one attachment per file for two processes; detached once both exited', async (t) => {
  const { agent, session, tls, writeMaps, tick, paths, root } = setup(t);
  writeMaps(100, [LIBC, LIBSSL, LIBCRYPTO]);
  writeMaps(102, [LIBC, LIBSSL, LIBCRYPTO]);
  await agent.start();
  // Scanned at start, before the agent says it is ready.
  t.deepEqual(paths(), [root(100, LIBSSL)]);
  t.is(session.uprobes.size, 11);
  t.like(agent.agentHealth(), { tlsFiles: 1, tlsProcessesByLibrary: { openssl: 2 }, tlsProcessesUnprobedByLibrary: {}, tlsAttachFailures: 0 });
  agent.replay(batch([procRecord({ type: 'exit', tgid: 100, tsNs: 1 })]));
  tick();
  t.is(session.uprobes.size, 11, '102 still maps it');
  agent.replay(batch([procRecord({ type: 'exit', tgid: 102, tsNs: 2 })]));
  t.is(session.uprobes.size, 11, 'detached by the rescan after the exit, not at once');
  tick();
  t.is(session.uprobes.size, 0);
  const summary = agent.summary().find((l) => l.startsWith('tls:'));
  t.regex(summary ?? '', /^tls: 1 library files probed \(1 detached after their last process\), 0 failed/);
  t.is(tls!.manager.stats().detaches, 1);
  await agent.stop();
});

test('a library loaded later (dlopen) is found by the rescan; an exec is scanned after its batch', async (t) => {
  const { agent, session, writeMaps, tick, paths, root } = setup(t);
  writeMaps(100, [LIBC]);
  writeMaps(102, [LIBC]);
  await agent.start();
  tick();
  t.is(session.uprobes.size, 0);
  writeMaps(100, [LIBC, LIBSSL]);
  tick();
  t.deepEqual(paths(), [root(100, LIBSSL)]);
  // 102 execs node (which links OpenSSL in): scanned at the end of the exec's batch, no tick needed.
  writeMaps(102, [NODE, LIBC]);
  agent.replay(batch([procRecord({ type: 'exec', tgid: 102, tsNs: 5 })]));
  t.deepEqual(paths(), [root(100, LIBSSL), root(102, NODE)]);
  t.is(session.uprobes.size, 22);
  await agent.stop();
  t.is(session.uprobes.size, 0, 'detached before the session closes');
});

test('--tls-max-files 1: the second file is counted, not probed', async (t) => {
  const { agent, session, writeMaps, tick } = setup(t, ['--tls-max-files', '1']);
  writeMaps(100, [LIBSSL]);
  writeMaps(102, [NODE]);
  await agent.start();
  tick();
  t.is(session.uprobes.size, 11);
  t.like(agent.agentHealth(), { tlsFiles: 1, tlsFilesOverBound: 1, tlsProcessesUnprobedByLibrary: { openssl: 1 } });
  await agent.stop();
});

test('a rescan is spread over ticks (32 processes a tick); what nobody uses is detached at the end of the cycle', async (t) => {
  const pids = Array.from({ length: 40 }, (_, i) => 200 + i);
  const { agent, session, writeMaps, tick } = setup(t, [], pids);
  for (const p of pids) writeMaps(p, [LIBC]);
  await agent.start();
  t.is(session.uprobes.size, 0, 'all 40 scanned at start, at once: nothing to probe');
  writeMaps(239, [LIBSSL]);
  tick();
  t.is(session.uprobes.size, 0, 'the first 32 scanned');
  tick();
  t.is(session.uprobes.size, 11, 'the other 8, 239 among them');
  writeMaps(239, [LIBC]);
  tick();
  t.is(session.uprobes.size, 11, 'the next cycle is not over');
  tick();
  t.is(session.uprobes.size, 0);
  await agent.stop();
});

test('--no-tls: no feature, no tls group', (t) => {
  const { tls, agent } = setup(t, ['--no-tls']);
  t.is(tls, undefined);
  t.false(agent.features.some((f) => f.name === 'tls'));
});
