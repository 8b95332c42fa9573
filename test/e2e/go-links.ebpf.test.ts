// Go net/http links (issue 17, item 2), with real eBPF and a real OTLP
// receiver. Topology (loopback, the driver untraced):
//   driver --/r/ID--> Go frontend --/b/ID--> backend (Go, or threaded Python)
// Also with HTTPS on both sides of the frontend (Go backend). The frontend
// calls the backend with a keep-alive http.Client (its writes
// come from the transport's writeLoop goroutine), retrying a 503 or a closed
// connection; ids ending in 5 call it over a raw net.Conn written on the
// handler's own goroutine; a background goroutine calls /b/bgN through the
// same client all along (reusing the handlers' connections: its spans are
// roots). Every span carries its id in its path, so the true tree is known:
// a frontend CLIENT span /b/ID whose parent is not the frontend SERVER span
// /r/ID is wrong, and so is any parent of a /b/bgN CLIENT span.

import anyTest, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload, type Workload } from '../helpers/agent';
import { goProgram } from '../helpers/go-build';
import { goBinaryWithVersion } from '../helpers/go-links';
import { testCertificates } from '../helpers/tls';
import { judge, line, pct, tally } from '../helpers/link-tally';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const PROGRAM = path.join(ROOT, 'test', 'e2e', 'programs', 'go', 'links');
const DRIVER = path.join(PROGRAM, 'driver.js');
const PY = '/usr/bin/python3';
const REQUESTS = 200;

const otlp = useOtlpReceiver(anyTest);


/** Attempts the frontend makes for id number n (main.go): a 503 or a closed connection first costs one more. */
const attempts = (n: number) => (n % 10 === 3 || n % 20 === 7 ? 2 : 1);

interface Driver {
  /** Resolves once it is ready to send its COUNT requests (after opening its connections, with `warm`). */
  readonly warmed: Promise<void>;
  go(): void;
  readonly done: Promise<Record<string, number>>;
}

function driver(port: number, count: number, concurrency: number, first: number, warm: boolean, tls: boolean): Driver {
  const child = spawn(process.execPath, [DRIVER, String(port), String(count), String(concurrency), String(first), warm ? 'warm' : ''], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, DRIVER_TLS: tls ? '1' : '0' },
  });
  let out = '';
  let onWarm: () => void = () => undefined;
  const warmed = new Promise<void>((resolve) => (onWarm = resolve));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('"warm":true')) onWarm();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const done = new Promise<Record<string, number>>((resolve, reject) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`driver exited ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>);
    }),
  );
  return { warmed: warm ? warmed : Promise.resolve(), go: () => child.stdin.end('go\n'), done };
}

interface Phase {
  readonly concurrency: number;
  readonly first: number;
  /** Its connections to the frontend opened before the agent started. */
  readonly preopened?: boolean;
}

const PHASES: readonly Phase[] = [
  { concurrency: 16, first: 0 },
  { concurrency: 64, first: 1000 },
  { concurrency: 16, first: 2000, preopened: true },
];

/** Runs the phases against frontend + backend under one agent; the spans of each phase, by id. */
async function run(
  t: ExecutionContext,
  frontendBinary: string,
  backendCmd: [string, string[]],
  phases: readonly Phase[],
  count: number,
  env: Record<string, string> = {},
) {
  const tls = env['LINKS_TLS_CERT'] !== undefined;
  const backend = await startWorkload(backendCmd[0], backendCmd[1], env);
  let frontend: Workload | undefined;
  try {
    frontend = await startWorkload(frontendBinary, ['frontend', String(backend.hello.port)], env);
    const port = Number(frontend.hello.port);
    const early = new Map(phases.filter((p) => p.preopened).map((p) => [p, driver(port, count, p.concurrency, p.first, true, tls)]));
    for (const d of early.values()) await d.warmed;
    const agent = await startAgent(['run', '--pid', String(frontend.pid), '--pid', String(backend.pid)], {
      env: otlp.env({ OTEL_BSP_MAX_QUEUE_SIZE: '100000' }),
    });
    for (const p of phases) {
      const d = early.get(p) ?? driver(port, count, p.concurrency, p.first, false, tls);
      d.go();
      t.deepEqual(await d.done, { ok: count, failed: 0, count });
    }
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    const spans = new Map<number, { frontS: ReceivedSpan[]; frontC: ReceivedSpan[]; backS: ReceivedSpan[] }>();
    const background: ReceivedSpan[] = [];
    for (const s of otlp.receiver.spans) {
      const p = String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? '');
      if (/\/b\/bg\d{6}$/.test(p)) {
        if (s.resource['process.pid'] === frontend.pid && s.kind === 3) background.push(s);
        continue;
      }
      const m = /\/(r|b)\/t(\d{6})$/.exec(p);
      if (!m) continue;
      const n = Number(m[2]);
      let e = spans.get(n);
      if (!e) spans.set(n, (e = { frontS: [], frontC: [], backS: [] }));
      const pid = s.resource['process.pid'];
      if (pid === frontend.pid && s.kind === 2 && m[1] === 'r') e.frontS.push(s);
      else if (pid === frontend.pid && s.kind === 3 && m[1] === 'b') e.frontC.push(s);
      else if (pid === backend.pid && s.kind === 2 && m[1] === 'b') e.backS.push(s);
      else t.fail(`unexpected span ${s.name} ${p} of pid ${String(pid)} kind ${s.kind}`);
    }
    return { spans, background, stderr };
  } finally {
    frontend?.child.kill();
    backend.child.kill();
  }
}

function judgePhase(spans: Map<number, { frontS: ReceivedSpan[]; frontC: ReceivedSpan[]; backS: ReceivedSpan[] }>, p: Phase, count: number) {
  const links = tally();
  const direct = tally(); // the raw net.Conn clients, written on the handler goroutine
  const cross = tally();
  let frontS = 0;
  let roots = 0;
  let frontC = 0;
  let backS = 0;
  let expectedC = 0;
  const unlinked: string[] = []; // http.Client spans without a parent, for the log
  for (let n = p.first; n < p.first + count; n++) {
    const e = spans.get(n) ?? { frontS: [], frontC: [], backS: [] };
    frontS += e.frontS.length;
    roots += e.frontS.filter((s) => s.parentSpanId === '').length;
    frontC += e.frontC.length;
    backS += e.backS.length;
    expectedC += attempts(n);
    for (const c of e.frontC) {
      judge(n % 10 === 5 ? direct : links, c, e.frontS);
      if (n % 10 !== 5 && c.parentSpanId === '' && unlinked.length < 30) unlinked.push(`t${n} ${c.attributes['network.peer.port'] ?? ''} ${JSON.stringify(c.attributes).slice(0, 400)}`);
    }
    for (const s of e.backS) judge(cross, s, e.frontC);
  }
  return { links, direct, cross, frontS, roots, frontC, backS, expectedC, unlinked };
}

for (const backendKind of ['go', 'python', 'go over https'] as const) {
  const title =
    backendKind === 'go over https'
      ? 'Go frontend and Go backend, both over HTTPS (crypto/tls on both sides of the frontend)'
      : `Go frontend, ${backendKind} backend`;
  ebpfTest.serial(`${title}: every client span under its request, none wrong, at 16 and 64 in flight${backendKind === 'go over https' ? '' : ' and on connections older than the agent'}`, async (t) => {
    const binary = await goProgram(PROGRAM);
    const backendCmd: [string, string[]] = backendKind === 'python' ? [PY, [path.join(PROGRAM, 'backend.py')]] : [binary, ['backend']];
    let env: Record<string, string> = {};
    if (backendKind === 'go over https') {
      const certs = await testCertificates();
      env = { LINKS_TLS_CERT: certs.serverCert, LINKS_TLS_KEY: certs.serverKey };
    }
    // Over TLS, a connection older than the agent loses its first request to the TLS capture (not to links): those phases are plain only.
    const phases = backendKind === 'go over https' ? PHASES.filter((p) => !p.preopened) : PHASES;
    const { spans, background, stderr } = await run(t, binary, backendCmd, phases, REQUESTS, env);
    t.log(stderr.split('\n').filter((l) => /link/i.test(l)).join('\n'));
    const linkedBackground = background.filter((s) => s.parentSpanId !== '').length;
    const byId = new Map(otlp.receiver.spans.map((s) => [s.spanId, s]));
    for (const b of background.filter((s) => s.parentSpanId !== '').slice(0, 5)) {
      const p = byId.get(b.parentSpanId);
      t.log(`background ${String(b.attributes['url.full'])} start ${b.startTimeUnixNano} has parent ${p ? `${p.kind} ${String(p.attributes['url.path'] ?? p.attributes['url.full'])} ${p.startTimeUnixNano}-${p.endTimeUnixNano}` : b.parentSpanId}`);
    }
    t.log(`background client (no request's child): ${background.length} spans, ${linkedBackground} with a parent`);
    t.true(background.length > 0);
    t.is(linkedBackground, 0, 'a background request reusing a handler\'s connection is a root');
    for (const p of phases) {
      const r = judgePhase(spans, p, REQUESTS);
      t.log(`${p.concurrency} in flight${p.preopened ? ' (connections opened before the agent)' : ''}: ${line('http.Client (writeLoop)', r.links)}; ${line('raw net.Conn (handler goroutine)', r.direct)}; ${line('backend server -> frontend client', r.cross)}`);
      if (r.unlinked.length > 0) t.log(`unlinked client spans (first ${r.unlinked.length}):\n${r.unlinked.join('\n')}`);
      t.is(r.frontS, REQUESTS);
      t.is(r.roots, REQUESTS, 'the driver is not traced: every frontend SERVER span is a root');
      t.is(r.frontC, r.expectedC, 'a CLIENT span per attempt');
      t.is(r.backS, r.expectedC, 'a backend SERVER span per attempt');
      t.is(r.links.wrong + r.direct.wrong + r.cross.wrong, 0);
      if (backendKind === 'go over https') {
        // crypto/tls's Write starts the request before its socket write: only roundTrip marks TLS connections.
        t.is(r.direct.missing, r.direct.total, line('direct over TLS: roots', r.direct));
      } else {
        t.is(r.direct.correct, r.direct.total, line('direct', r.direct));
      }
      t.true(pct(r.links) >= 99, line('http.Client', r.links));
    }
    t.is(otlp.counter('ebpf_otel.trace.link_checks_failed'), 0);
  });
}

ebpfTest.serial('a stripped Go binary of a version without a verified layout: reported, not probed, nothing linked by the go rule', async (t) => {
  const binary = await goProgram(PROGRAM);
  const stripped = await goBinaryWithVersion(await goProgram(PROGRAM, { flags: ['-ldflags=-s -w'] }), '1.99');
  const count = 50;
  const { spans, background, stderr } = await run(t, stripped, [binary, ['backend']], [{ concurrency: 16, first: 0 }], count);
  t.log(stderr.split('\n').filter((l) => /link|go/i.test(l)).join('\n'));
  t.regex(stderr, /no DWARF \(stripped\) and Go 1\.99\.\S+ is not among the verified layouts \(1\.19\)/);
  const r = judgePhase(spans, { concurrency: 16, first: 0 }, count);
  t.is(r.frontS, count);
  t.is(r.frontC, r.expectedC);
  // The go rule cannot run here, and a Go process takes no thread or event-loop guess either
  // (goroutines move between threads): every client span is a root.
  const linkedBackground = background.filter((s) => s.parentSpanId !== '').length;
  t.log(`unprobed: ${line('http.Client', r.links)}; ${line('raw', r.direct)}; background with a parent: ${linkedBackground}/${background.length}`);
  t.is(r.links.missing, r.links.total);
  t.is(r.direct.missing, r.direct.total);
  t.is(linkedBackground, 0);
  t.is(otlp.counter('ebpf_otel.trace.links', { 'ebpf_otel.link': 'go' }), 0);
  t.is(otlp.counter('ebpf_otel.links.unprobed_processes'), 1);
  t.notRegex(stderr, /links \(go\)/, 'no go marks at all');
});
