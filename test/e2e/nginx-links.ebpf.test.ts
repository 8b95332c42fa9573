// nginx upstream links with real eBPF, a real nginx and a real OTLP receiver.
// Topology (loopback; the driver is not traced):
//   driver --/r/ID--> nginx (Debian's binary, one worker, keep-alive upstream)
//            nginx --/b/ID--> backend (Python, two ports) | a dead port
// Upstream servers round-robin, never marked down: a request that lands on
// the dead port is retried on the next server (connect refused), an id
// ending in f gets a 502 first and h a hang past proxy_read_timeout, both
// retried on the other backend port. The test id in every path gives the
// true tree: each nginx SERVER span /r/ID has one nginx CLIENT child per
// upstream attempt that sent the request, each of them the parent of the
// backend SERVER span that attempt reached. A parent that is not the true
// one is wrong; none is missing.

import anyTest from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload, type RunningAgent, type Workload } from '../helpers/agent';
import { NGINX, nginxAvailable, startNginx, type NginxServer } from '../helpers/nginx-server';
import { ElfFile } from '../../src/capture/elf/elf';
import { encodeNginxOffsets, NGINX_DEFAULT_OFFSETS, NGINX_RUNTIME } from '../../src/capture/links/nginx';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { freePort } from '../helpers/ports';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs', 'nginx_links');
const PY = '/usr/bin/python3';
const REQUESTS = 200;
const SPAN_SERVER = 2;
const SPAN_CLIENT = 3;

const otlp = useOtlpReceiver(anyTest);
const test = nginxAvailable() ? ebpfTest.serial : (title: string) => anyTest.serial.skip(`${title} (skipped: no /usr/sbin/nginx; scripts/setup.sh installs it)`, () => {});

interface Topology {
  readonly backend: Workload;
  readonly nginx: NginxServer;
}

async function startTopology(binary?: string, mirror = false): Promise<Topology> {
  const backend = await startWorkload(PY, [path.join(PROGRAMS, 'backend.py'), '1.5']);
  const ports = backend.hello['ports'] as number[];
  // Nobody listens there: every attempt on it is refused, and retried.
  const dead = await freePort();
  const nginx = await startNginx({ upstreams: [...ports, dead], timeoutS: 1, mirror, ...(binary ? { binary } : {}) });
  return { backend, nginx };
}

/**
 * A copy of Debian's nginx whose dynamic symbol table no longer names
 * ngx_http_file_cache_open (one letter changed in .dynstr; nothing binds to
 * it by name): the agent takes it for a build without the HTTP cache, whose
 * ngx_http_request_t has no `cache` pointer before `upstream`, and reads
 * r->upstream 8 bytes early (r->cache: NULL). The code and its layout are
 * the real ones: offsets that do not check out.
 */
function nginxMisjudged(dir: string): string {
  const copy = path.join(dir, 'nginx');
  const b = fs.readFileSync(NGINX);
  const elf = ElfFile.open(NGINX);
  const dynstr = elf.section('.dynstr')!;
  elf.close();
  const name = Buffer.from('ngx_http_file_cache_open\0', 'latin1');
  const at = b.subarray(dynstr.offset, dynstr.offset + dynstr.size).indexOf(name);
  if (at < 0) throw new Error(`${NGINX}: no ngx_http_file_cache_open in .dynstr`);
  b[dynstr.offset + at + name.length - 2] = 'X'.charCodeAt(0);
  fs.writeFileSync(copy, b, { mode: 0o755 });
  return copy;
}

async function stopTopology(t: Topology): Promise<void> {
  await t.nginx.stop();
  t.backend.child.kill();
}

/** The agent following nginx (master and worker) and the backend; resolves once nginx's link probes are attached. */
async function startLinkedAgent(top: Topology, extraArgs: string[] = []): Promise<RunningAgent> {
  const agent = await startAgent(
    ['run', '--pid', String(top.nginx.masterPid), '--pid', String(top.nginx.workerPid), '--pid', String(top.backend.pid), '--log-level', 'debug', ...extraArgs],
    { env: otlp.env({ OTEL_BSP_MAX_QUEUE_SIZE: '100000' }) },
  );
  const deadline = Date.now() + 10_000;
  while (!/linking: probed .* \(nginx /.test(agent.stderr())) {
    if (Date.now() > deadline) throw new Error(`nginx link probes not attached within 10 s; stderr:\n${agent.stderr()}`);
    await sleep(100);
  }
  return agent;
}

function drive(top: Topology, concurrency: number, prefix: string): { ok: number; failed: number; count: number } {
  const r = spawnSync(process.execPath, [path.join(PROGRAMS, 'driver.js'), String(top.nginx.port), String(REQUESTS), String(concurrency), prefix], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(r.stdout) as { ok: number; failed: number; count: number };
}

/** Upstream attempts that sent the request to a live backend port: two for f and h (the failed one, then the retry), one for the others. */
function attempts(id: string): number {
  return id.endsWith('f') || id.endsWith('h') ? 2 : 1;
}

interface Figures {
  trees: number;
  /** nginx SERVER spans that are roots (the driver is not traced). */
  roots: number;
  /** nginx CLIENT spans: under their request's nginx SERVER span, under another span, without parent. */
  clients: { total: number; linked: number; wrong: number; missing: number };
  /** Requests whose nginx CLIENT spans number their attempts. */
  attemptsRight: number;
  /** Backend SERVER spans: under one of their request's nginx CLIENT spans, under another span, without parent. */
  backends: { total: number; linked: number; wrong: number; missing: number };
  /** nginx CLIENT spans that are the parent of more than one backend SERVER span. */
  sharedParents: number;
  /** Requests whose whole tree is right: root SERVER, every CLIENT linked, every backend SERVER under one of them. */
  complete: number;
  /** nginx CLIENT spans of mirror subrequests (/m/r/ID): under their request's SERVER span, under another span, without parent. */
  mirrors: { total: number; linked: number; wrong: number; missing: number };
  /** Backend SERVER spans of the mirrors: under their mirror CLIENT span, elsewhere, without parent. */
  mirrorBackends: { total: number; linked: number; wrong: number; missing: number };
}

function judge(spans: readonly ReceivedSpan[], top: Topology, prefix: string): Figures {
  const server = new Map<string, ReceivedSpan>();
  const clients = new Map<string, ReceivedSpan[]>();
  const backends = new Map<string, ReceivedSpan[]>();
  const push = (m: Map<string, ReceivedSpan[]>, id: string, s: ReceivedSpan) => m.set(id, [...(m.get(id) ?? []), s]);
  const mirrors = new Map<string, ReceivedSpan[]>();
  const mirrorBackends = new Map<string, ReceivedSpan[]>();
  const idOf = new RegExp(`/(r|b|m/r)/(${prefix}\\d{6}[nfh])$`);
  for (const s of spans) {
    const m = idOf.exec(String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? ''));
    if (!m) continue;
    const [, route, id] = m as unknown as [string, string, string];
    const pid = s.resource['process.pid'];
    if (pid === top.nginx.workerPid && s.kind === SPAN_SERVER && route === 'r') {
      if (server.has(id)) throw new Error(`two nginx SERVER spans for ${id}`);
      server.set(id, s);
    } else if (pid === top.nginx.workerPid && s.kind === SPAN_CLIENT && route === 'b') push(clients, id, s);
    else if (pid === top.backend.pid && s.kind === SPAN_SERVER && route === 'b') push(backends, id, s);
    else if (pid === top.nginx.workerPid && s.kind === SPAN_CLIENT && route === 'm/r') push(mirrors, id, s);
    else if (pid === top.backend.pid && s.kind === SPAN_SERVER && route === 'm/r') push(mirrorBackends, id, s);
    else throw new Error(`unexpected span ${s.name} kind ${s.kind} of pid ${pid} for ${id}`);
  }
  const f: Figures = {
    trees: server.size,
    roots: 0,
    clients: { total: 0, linked: 0, wrong: 0, missing: 0 },
    attemptsRight: 0,
    backends: { total: 0, linked: 0, wrong: 0, missing: 0 },
    sharedParents: 0,
    complete: 0,
    mirrors: { total: 0, linked: 0, wrong: 0, missing: 0 },
    mirrorBackends: { total: 0, linked: 0, wrong: 0, missing: 0 },
  };
  for (const [id, root] of server) {
    if (root.parentSpanId === '') f.roots++;
    const cs = clients.get(id) ?? [];
    const bs = backends.get(id) ?? [];
    if (cs.length === attempts(id)) f.attemptsRight++;
    let whole = root.parentSpanId === '';
    for (const c of cs) {
      f.clients.total++;
      if (c.parentSpanId === '') f.clients.missing++;
      else if (c.parentSpanId === root.spanId && c.traceId === root.traceId) f.clients.linked++;
      else f.clients.wrong++;
      whole &&= c.parentSpanId === root.spanId;
    }
    const parents = new Map<string, number>();
    for (const b of bs) {
      f.backends.total++;
      const parent = cs.find((c) => c.spanId === b.parentSpanId && c.traceId === b.traceId);
      if (b.parentSpanId === '') f.backends.missing++;
      else if (parent) f.backends.linked++;
      else f.backends.wrong++;
      whole &&= parent !== undefined;
      if (parent) parents.set(parent.spanId, (parents.get(parent.spanId) ?? 0) + 1);
    }
    f.sharedParents += [...parents.values()].filter((n) => n > 1).length;
    if (whole && cs.length === attempts(id) && bs.length === cs.length) f.complete++;
    const ms = mirrors.get(id) ?? [];
    for (const m of ms) {
      f.mirrors.total++;
      if (m.parentSpanId === '') f.mirrors.missing++;
      else if (m.parentSpanId === root.spanId && m.traceId === root.traceId) f.mirrors.linked++;
      else f.mirrors.wrong++;
    }
    for (const b of mirrorBackends.get(id) ?? []) {
      f.mirrorBackends.total++;
      if (b.parentSpanId === '') f.mirrorBackends.missing++;
      else if (ms.some((m) => m.spanId === b.parentSpanId && m.traceId === b.traceId)) f.mirrorBackends.linked++;
      else f.mirrorBackends.wrong++;
    }
  }
  return f;
}

const pct = (n: number, of: number) => (of === 0 ? '0.00' : ((100 * n) / of).toFixed(2));

test('nginx: every upstream attempt is the child of its request, at 16 and 64 in flight with retries, none wrong', async (t) => {
  const top = await startTopology();
  try {
    const agent = await startLinkedAgent(top);
    const runs = [
      { concurrency: 16, prefix: 'a' },
      { concurrency: 64, prefix: 'b' },
    ];
    for (const r of runs) t.deepEqual(drive(top, r.concurrency, r.prefix), { ok: REQUESTS, failed: 0, count: REQUESTS });
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.log(stderr.split('\n').filter((l) => /links|link_/.test(l)).join('\n'));
    const spans = otlp.receiver.spans;
    for (const r of runs) {
      const f = judge(spans, top, r.prefix);
      t.log(
        `${r.concurrency} in flight: ${f.trees} trees, ${f.complete} complete (${pct(f.complete, REQUESTS)}%); nginx CLIENT ${f.clients.linked}/${f.clients.total} linked (${pct(f.clients.linked, f.clients.total)}%), ${f.clients.wrong} wrong, ${f.clients.missing} without parent; backend SERVER ${f.backends.linked}/${f.backends.total} linked, ${f.backends.wrong} wrong, ${f.backends.missing} without parent`,
      );
      t.is(f.trees, REQUESTS, `${r.concurrency}: one nginx SERVER span per request`);
      t.is(f.roots, REQUESTS, `${r.concurrency}: nginx SERVER spans are roots`);
      // 20 ids end in f and 8 in h (driver.js): two attempts each.
      t.is(f.clients.total, REQUESTS + 28, `${r.concurrency}: one nginx CLIENT span per attempt`);
      t.is(f.attemptsRight, REQUESTS, `${r.concurrency}: every request has a CLIENT span per attempt`);
      t.is(f.clients.wrong, 0, `${r.concurrency}: nginx CLIENT spans under another request`);
      t.is(f.backends.wrong, 0, `${r.concurrency}: backend SERVER spans under another span`);
      t.is(f.sharedParents, 0, `${r.concurrency}: an nginx CLIENT span parent of two backend SERVER spans`);
      t.true(f.clients.linked >= 0.99 * f.clients.total, `${r.concurrency}: nginx CLIENT linked ${pct(f.clients.linked, f.clients.total)}%`);
      // The hung attempt's backend answers after nginx gave up: its first write still goes out.
      t.is(f.backends.total, f.clients.total, `${r.concurrency}: one backend SERVER span per attempt`);
      t.true(f.backends.linked >= 0.99 * f.backends.total, `${r.concurrency}: backend SERVER linked ${pct(f.backends.linked, f.backends.total)}%`);
      t.true(f.complete >= 0.99 * REQUESTS, `${r.concurrency}: complete trees ${pct(f.complete, REQUESTS)}%`);
    }
    t.is(otlp.counter('ebpf_otel.trace.link_checks_failed', { 'ebpf_otel.link': 'nginx' }), 0);
  } finally {
    await stopTopology(top);
  }
});

test('nginx: a binary whose offsets do not check out is reported and left unlinked, none wrong', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-links-'));
  const binary = nginxMisjudged(dir);
  const elf = ElfFile.open(binary);
  const probes = NGINX_RUNTIME.classify(elf, binary);
  elf.close();
  t.deepEqual(probes?.offsets?.value, encodeNginxOffsets({ ...NGINX_DEFAULT_OFFSETS, requestUpstream: 64 }), 'taken for a build without the HTTP cache');
  const top = await startTopology(binary);
  try {
    const agent = await startLinkedAgent(top);
    t.deepEqual(drive(top, 16, 'c'), { ok: REQUESTS, failed: 0, count: REQUESTS });
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    const reported = stderr.split('\n').filter((l) => /nginx/.test(l) && /check/.test(l) && l.includes(`process ${top.nginx.workerPid}`));
    t.log(reported.join('\n'));
    t.is(reported.length, 1, 'one log line names the worker whose checks failed');
    t.is(otlp.counter('ebpf_otel.trace.link_checks_failed', { 'ebpf_otel.link': 'nginx' }), 1);
    const f = judge(otlp.receiver.spans, top, 'c');
    t.log(`misjudged build: nginx CLIENT ${f.clients.linked}/${f.clients.total} linked, ${f.clients.wrong} wrong, ${f.clients.missing} without parent`);
    t.is(f.trees, REQUESTS);
    t.is(f.clients.total, REQUESTS + 28);
    t.is(f.clients.linked, 0);
    t.is(f.clients.wrong, 0);
    t.is(f.clients.missing, f.clients.total);
    t.is(f.backends.wrong, 0);
  } finally {
    await stopTopology(top);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Subrequests are not associated (their memory goes with their main
// request's pool, with no call of their own to see): a mirror's upstream
// request is left without parent, never under a wrong one, while the
// connections it used go on to serve main requests, linked.
test('nginx: mirror subrequests are left unlinked, on connections shared with main requests, none wrong', async (t) => {
  const top = await startTopology(undefined, true);
  try {
    const agent = await startLinkedAgent(top);
    t.deepEqual(drive(top, 16, 'd'), { ok: REQUESTS, failed: 0, count: REQUESTS });
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.log(stderr.split('\n').filter((l) => /links|link_/.test(l)).join('\n'));
    const kernel = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(stderr)?.[1] ?? 0);
    t.is(kernel('link_nginx_subrequests'), REQUESTS, 'one mirror subrequest per request, not associated');
    t.true(kernel('link_nginx_clear') >= REQUESTS, 'every connection a mirror takes is marked CLEAR');
    const f = judge(otlp.receiver.spans, top, 'd');
    t.log(
      `mirror: nginx CLIENT ${f.clients.linked}/${f.clients.total} linked, ${f.clients.wrong} wrong; mirror CLIENT ${f.mirrors.linked}/${f.mirrors.total} linked, ${f.mirrors.wrong} wrong, ${f.mirrors.missing} without parent; mirror backend ${f.mirrorBackends.linked}/${f.mirrorBackends.total} linked`,
    );
    t.is(f.trees, REQUESTS);
    t.is(f.clients.total, REQUESTS + 28);
    t.is(f.clients.wrong, 0);
    t.true(f.clients.linked >= 0.99 * f.clients.total, `nginx CLIENT linked ${pct(f.clients.linked, f.clients.total)}%`);
    t.is(f.mirrors.total, REQUESTS);
    t.is(f.mirrors.wrong, 0);
    t.is(f.mirrors.missing, REQUESTS);
    t.is(f.mirrorBackends.total, REQUESTS);
    t.is(f.mirrorBackends.wrong, 0);
    t.is(f.backends.wrong, 0);
  } finally {
    await stopTopology(top);
  }
});
