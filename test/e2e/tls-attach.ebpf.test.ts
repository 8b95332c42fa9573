// TLS attachments with real eBPF: `ebpf-otel run` selects two Python
// processes that load libssl only after the agent started (`import ssl`
// maps it through dlopen); the agent attaches the tls group's probes to
// libssl.so.3 once, and detaches them after both processes exited. Seen in
// the agent's debug log and on /metrics (ebpf_otel.tls.files).

import anyTest from 'ava';
import { ebpfRequired, ebpfTest, ebpfUnavailableReason } from '../helpers/ebpf';
import { sleep, startAgent, startWorkload } from '../helpers/agent';
import { loadNativeBinding } from '../../src/capture/native-binding';
import { defaultSessionOptions } from '../../src/capture/session-defaults';
import { TLS_PROGRAMS } from '../../src/capture/tls/library';

const PY = '/usr/bin/python3';
/** Waits for "go" before `import ssl`, and again before exiting. */
const LATE_SSL = [
  'import json, sys',
  'print(json.dumps({"ready": True}), flush=True)',
  'sys.stdin.readline()',
  'import ssl',
  'print(json.dumps({"openssl": ssl.OPENSSL_VERSION}), flush=True)',
  'sys.stdin.readline()',
  'print(json.dumps({"done": True}), flush=True)',
].join('\n');

/** The tls programs this build lacks (they come with the kernel side of issue 14). */
function missingTlsPrograms(): string[] {
  const binding = loadNativeBinding();
  const base = defaultSessionOptions();
  const groups = { ...base.groups, tls: true };
  const session = new binding.SocketTraceSession({ ...base, groups });
  try {
    const names = new Set(session.programs().map((p) => p.name));
    return TLS_PROGRAMS.filter((p) => !names.has(p));
  } finally {
    session.close();
  }
}

const missing = ebpfUnavailableReason() === undefined ? missingTlsPrograms() : [];
const test =
  missing.length === 0
    ? ebpfTest.serial
    : ebpfRequired
      ? (title: string) => anyTest.serial(title, (t) => t.fail(`REQUIRE_EBPF=1 but this build has no ${missing.join(', ')}`))
      : (title: string) => anyTest.serial.skip(`${title} (skipped: this build has no ${missing.join(', ')})`, () => {});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

test('libssl loaded by two processes after the agent started: attached once, detached after both exited', async (t) => {
  const a = await startWorkload(PY, ['-c', LATE_SSL]);
  const b = await startWorkload(PY, ['-c', LATE_SSL]);
  const agent = await startAgent(['run', '--pid', String(a.pid), '--pid', String(b.pid), '--log-level', 'debug', '--health-listen', '127.0.0.1:0']);
  let stopped = false;
  try {
    const port = Number(/health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(agent.stderr())![1]);
    const probed = () => agent.stderr().split('\n').filter((l) => /tls: probed \S*libssl\.so\.3 /.test(l));
    const detached = () => agent.stderr().split('\n').filter((l) => /tls: detached \S*libssl\.so\.3 /.test(l));
    // One rescan period at least: nothing maps libssl yet.
    await sleep(2500);
    t.deepEqual(probed(), [], 'libssl is not mapped before import ssl');
    a.go();
    b.go();
    await until('both imports', () => a.lines.length >= 2 && b.lines.length >= 2);
    await until('the attach', () => probed().length > 0);
    await until('ebpf_otel.tls.files 1', async () => (await metric(port, 'ebpf_otel_tls_files')) === 1);
    t.is(probed().length, 1, agent.stderr());
    t.regex(probed()[0]!, new RegExp(`tls: probed /proc/(${a.pid}|${b.pid})/root/\\S*libssl\\.so\\.3 \\(openssl 3\\.\\d+\\.\\d+, \\d+:\\d+\\): 11 probes in [\\d.]+ ms`));
    t.false(agent.stderr().includes('tls: cannot probe'), agent.stderr());

    a.go();
    await a.result();
    await sleep(2500);
    t.deepEqual(detached(), [], 'still mapped by the other process');
    t.is(await metric(port, 'ebpf_otel_tls_files'), 1);
    b.go();
    await b.result();
    await until('the detach', () => detached().length > 0);
    t.is(detached().length, 1);
    t.is(await metric(port, 'ebpf_otel_tls_files'), 0);
    const { code, stderr } = await agent.stop();
    stopped = true;
    t.is(code, 0);
    t.regex(stderr, /tls: 1 library files probed \(1 detached after their last process\), 0 failed to attach/);
    const ms = /attach time ([\d.]+) ms in all/.exec(stderr);
    t.log(`attach time of libssl.so.3 (11 probes): ${ms?.[1]} ms`);
  } finally {
    if (!stopped) await agent.stop();
    a.child.kill();
    b.child.kill();
  }
});
