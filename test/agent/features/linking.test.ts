// The linking feature in the agent `run` builds, on a fake kernel session and
// a fake /proc whose executables are real files of this machine, with a
// runtime that recognises them by a symbol: what it attaches, with which
// layout and cookie, and what it reports when a runtime cannot be probed.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAgent } from '../../../src/agent/agent';
import type { LinkingFeature } from '../../../src/agent/features/linking';
import { LINKING_RESCAN_MS } from '../../../src/agent/features/linking';
import type { LinkRuntime } from '../../../src/capture/links/runtime';
import { parseRunArgs } from '../../../src/cli/run-command';
import { PROTOCOLS } from '../../../src/protocols/registry';
import { FakeProc } from '../../helpers/fake-proc';
import { FakeKernelSession, fakeKernelDeps } from '../../helpers/fake-session';
import { batch, procRecord } from '../../helpers/records';
import type { Logger } from '../../../src/util/log';

const NODE = fs.realpathSync(process.execPath);
const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';

/** Recognises node (it exports napi_create_object) as "nginx"; libc as a "go" it cannot probe. */
const runtimes: LinkRuntime[] = [
  {
    rule: 'nginx',
    classify: (elf) =>
      elf.symbols(new Set(['napi_create_object']), { tables: ['.dynsym'] }).size > 0
        ? { version: '1.0', probes: [{ program: 'uprobe_link_nginx_a', at: 0x1000, retprobe: false, required: true }], offsets: { map: 'link_nginx_offsets', value: Buffer.from([8, 24]) } }
        : undefined,
  },
  {
    rule: 'go',
    classify: (elf) => (elf.symbols(new Set(['gnu_get_libc_version']), { tables: ['.dynsym'] }).size > 0 ? { version: '1.12', probes: [], unprobedReason: 'no goid offset for this version' } : undefined),
  },
];

function setup(t: import('ava').ExecutionContext, exes: Record<number, string>, flags: string[] = []) {
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  for (const [pid, exe] of Object.entries(exes)) {
    fp.add({ pid: Number(pid), exe: 'usr/bin/app', cmdline: ['app'] });
    const link = path.join(fp.proc, pid, 'exe');
    fs.unlinkSync(link);
    fs.symlinkSync(exe, link);
  }
  const options = parseRunArgs([...Object.keys(exes).flatMap((p) => ['--pid', p]), '--no-tcp-metrics', '--no-flow-metrics', '--no-tls', ...flags], { env: {}, protocols: PROTOCOLS });
  if (options === 'help') throw new Error('unreachable');
  const session = new FakeKernelSession();
  const warnings: string[] = [];
  const base = fakeKernelDeps(session, fp.proc, PROTOCOLS);
  const logger: Logger = { ...base.logger!, warn: (m: string) => void warnings.push(m) } as Logger;
  let nowNs = 0;
  const agent = createAgent({ ...options, capture: { ...options.capture, rescanMs: 0 } }, { ...base, logger, monotonicNs: () => nowNs, linkRuntimes: runtimes });
  const linking = agent.features.find((f) => f.name === 'linking') as LinkingFeature | undefined;
  const tick = () => {
    nowNs += LINKING_RESCAN_MS * 1e6;
    agent.tick(nowNs);
  };
  return { fp, agent, session, linking, tick, warnings };
}

test('a runtime executable: its layout in slot 0, its probes attached once with that slot as cookie, for two processes', async (t) => {
  const { agent, session, tick } = setup(t, { 100: NODE, 102: NODE, 104: LIBC });
  await agent.start();
  t.deepEqual([...session.linkMaps], [['link_nginx_offsets[0]', '0818']]);
  const probes = [...session.uprobes.values()];
  t.is(probes.length, 1);
  t.like(probes[0], { program: 'uprobe_link_nginx_a', symbol: String(0x1000), cookie: 0 });
  t.like(agent.agentHealth(), { linkProcesses: { nginx: 2, go: 0 }, linkUnprobedProcesses: { nginx: 0, go: 1 }, linkAttachFailures: 0 });
  agent.replay(batch([procRecord({ type: 'exit', tgid: 100, tsNs: 1 }), procRecord({ type: 'exit', tgid: 102, tsNs: 2 })]));
  tick();
  t.is(session.uprobes.size, 0, 'detached after its last process');
  await agent.stop();
});

test('a runtime it cannot probe: one warning per executable with the reason', async (t) => {
  const { agent, warnings, tick } = setup(t, { 104: LIBC, 106: LIBC });
  await agent.start();
  tick();
  t.deepEqual(
    warnings.filter((w) => w.startsWith('linking:')),
    ['linking: process 104 runs go 1.12 that cannot be probed: no goid offset for this version; its calls take no parent from it (counted in ebpf_otel.links.unprobed_processes)'],
  );
  await agent.stop();
});

test('--no-link-nginx leaves that runtime out; --no-linking the feature and its group', async (t) => {
  const a = setup(t, { 100: NODE }, ['--no-link-nginx']);
  await a.agent.start();
  t.is(a.session.uprobes.size, 0);
  await a.agent.stop();
  const b = setup(t, { 100: NODE }, ['--no-linking']);
  t.is(b.linking, undefined);
  await b.agent.start();
  t.is(b.session.options!.groups.links, false);
  await b.agent.stop();
});
