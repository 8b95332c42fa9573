// Node.js event loop with the opt-in preload (issue 17 item 3), with real
// eBPF and a real OTLP receiver. Topology (loopback, the driver untraced):
//   driver --/r/ID--> Node frontend --/b/ID--> Python backend (threads)
// The frontend awaits one backend call per request, through a keep-alive
// agent of 16 sockets, some after a timer or a promise chain; one id in ten
// gets a 500 and one in ten a reset connection from the backend, and the
// frontend retries those once (/b/ID/retry). 200 requests with 16 in
// flight, then 200 with 64. With the preload
// (NODE_OPTIONS=--require preload/node/ebpf-otel-preload.js) each frontend
// CLIENT span must be the child of its own SERVER span (ids in the paths are
// the truth); without it, the event-loop rule links only what it can prove.
// Never a wrong parent either way.

import anyTest from 'ava';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload, type Workload } from '../helpers/agent';
import { judge, line, tally, type Tally } from '../helpers/link-tally';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs', 'node_links');
const BACKEND = path.join(PROGRAMS, 'backend.py');
const PRELOAD = path.join(ROOT, 'preload', 'node', 'ebpf-otel-preload.js');
const PY = '/usr/bin/python3';
const REQUESTS = Number(process.env.NODE_LINKS_REQUESTS ?? 200);
/** In flight, and the id prefix of each round. */
const ROUNDS: ReadonlyArray<readonly [number, string]> = [
  [16, 'a'],
  [64, 'b'],
];

const otlp = useOtlpReceiver(anyTest);


/** Ids whose first call fails: a 500 (number ending in 0) or a reset (5); both are retried. */
const fails = (id: string) => ['0', '5'].includes(id.slice(-1));
const resets = (id: string) => id.endsWith('5');

interface Outcome {
  /** Per round (in-flight count): frontend CLIENT spans (first calls and retries) under frontend SERVER. */
  readonly node: Map<number, Tally>;
  /** Retries among them, per round. */
  readonly retries: Map<number, Tally>;
  /** Backend SERVER under frontend CLIENT (both ends of a connection), all rounds, reset calls left out. */
  readonly peer: Tally;
  /** First calls answered by a reset: their CLIENT spans found (they carry no response). */
  readonly resetCalls: number;
  readonly trees: number;
  readonly roots: number;
  readonly stderr: string;
}

async function run(t: Parameters<Parameters<typeof ebpfTest>[1]>[0], withPreload: boolean): Promise<Outcome> {
  const backend = await startWorkload(PY, [BACKEND]);
  let frontend: Workload | undefined;
  try {
    const env: Record<string, string> = withPreload ? { NODE_OPTIONS: `--require ${PRELOAD}` } : {};
    frontend = await startWorkload(process.execPath, [path.join(PROGRAMS, 'frontend.js'), String(backend.hello.port)], env);
    t.is(frontend.hello.preload, withPreload);
    const agent = await startAgent(['run', '--pid', String(frontend.pid), '--pid', String(backend.pid)], {
      env: otlp.env({ OTEL_BSP_MAX_QUEUE_SIZE: '100000' }),
    });
    for (const [inFlight, prefix] of ROUNDS) {
      const driver: { stdout: string; stderr: string } = spawnSync(process.execPath, [path.join(PROGRAMS, 'driver.js'), String(frontend.hello.port), prefix, String(REQUESTS), String(inFlight)], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      t.deepEqual(JSON.parse(driver.stdout), { ok: REQUESTS, failed: 0, count: REQUESTS }, driver.stderr);
    }
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);

    const byId = new Map<string, Record<string, ReceivedSpan>>();
    for (const s of otlp.receiver.spans) {
      const m = /\/(r|b)\/([ab]\d{6})(\/retry)?$/.exec(String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? ''));
      if (!m) continue;
      const who = s.resource['process.pid'] === frontend.pid ? 'front' : s.resource['process.pid'] === backend.pid ? 'back' : 'other';
      const role = `${who}.${s.kind === 2 ? 'S' : 'C'}.${m[3] ? 'retry' : m[1]}`;
      let spans = byId.get(m[2]!);
      if (!spans) byId.set(m[2]!, (spans = {}));
      if (spans[role]) t.fail(`two ${role} spans for ${m[2]}`);
      spans[role] = s;
    }
    const node = new Map(ROUNDS.map(([n]) => [n, tally()] as const));
    const retries = new Map(ROUNDS.map(([n]) => [n, tally()] as const));
    const peer = tally();
    let roots = 0;
    let resetCalls = 0;
    for (const [id, m] of byId) {
      const inFlight = ROUNDS.find(([, p]) => id.startsWith(p))![0];
      if (m['front.S.r']?.parentSpanId === '') roots++;
      judge(node.get(inFlight)!, m['front.C.b'], m['front.S.r']);
      judge(node.get(inFlight)!, m['front.C.retry'], m['front.S.r']);
      judge(retries.get(inFlight)!, m['front.C.retry'], m['front.S.r']);
      if (resets(id)) {
        if (m['front.C.b']) resetCalls++;
      } else {
        judge(peer, m['back.S.b'], m['front.C.b']);
      }
      judge(peer, m['back.S.retry'], m['front.C.retry']);
    }
    return { node, retries, peer, resetCalls, trees: byId.size, roots, stderr };
  } finally {
    frontend?.child.kill();
    backend.child.kill();
  }
}

function checkCommon(t: Parameters<Parameters<typeof ebpfTest>[1]>[0], o: Outcome): void {
  const all = ROUNDS.length * REQUESTS;
  t.is(o.trees, all, 'every request produced spans');
  t.is(o.roots, all, 'every frontend SERVER span is a root (the driver is not traced)');
  const failing = Array.from({ length: REQUESTS }, (_, i) => String(i)).filter(fails).length;
  const resetting = Array.from({ length: REQUESTS }, (_, i) => String(i)).filter(resets).length;
  // First calls except the resets, and every retry.
  t.is(o.peer.total, ROUNDS.length * (REQUESTS - resetting + failing));
  t.is(o.peer.wrong, 0);
  t.is(o.peer.correct, o.peer.total, line('backend SERVER under frontend CLIENT', o.peer));
  for (const [n, x] of o.node) {
    t.is(o.retries.get(n)!.total, failing, 'a CLIENT span for every retry');
    // Every call, retried or not: a reset call's CLIENT span too (its request went out).
    t.is(x.total, REQUESTS + failing);
    t.is(x.wrong, 0);
  }
}

ebpfTest.serial('Node frontend with the preload: each call under its own request at 16 and 64 in flight, none wrong', async (t) => {
  const o = await run(t, true);
  t.log(o.stderr.split('\n').filter((l) => l.startsWith('links') || l.includes('link')).join('\n'));
  for (const [n, x] of o.node) t.log(line(`preload, ${n} in flight: frontend CLIENT under frontend SERVER`, x));
  for (const [n, x] of o.retries) t.log(line(`preload, ${n} in flight: of which retries`, x));
  t.log(`${o.resetCalls} CLIENT spans of calls answered by a reset`);
  t.log(line('backend SERVER under frontend CLIENT', o.peer));
  checkCommon(t, o);
  let linked = 0;
  for (const [n, x] of o.node) {
    t.true(x.correct >= Math.ceil(0.99 * x.total), line(`${n} in flight`, x));
    linked += x.correct;
  }
  t.is(otlp.counter('ebpf_otel.trace.links', { 'ebpf_otel.link': 'node' }), linked, 'the agent counts what it linked by the node rule');
  t.is(otlp.counter('ebpf_otel.trace.link_checks_failed', { 'ebpf_otel.link': 'node' }), 0);
});

ebpfTest.serial('Node frontend without the preload: the event-loop rule, none wrong', async (t) => {
  const o = await run(t, false);
  for (const [n, x] of o.node) t.log(line(`no preload, ${n} in flight: frontend CLIENT under frontend SERVER`, x));
  checkCommon(t, o);
  t.is(otlp.counter('ebpf_otel.trace.links', { 'ebpf_otel.link': 'node' }), 0);
});
