// Measured trace correctness, with real eBPF and a real OTLP receiver.
// Topology (all on loopback, the driver untraced):
//   driver --/order/ID--> frontend (Python, thread per request)
//            frontend --/py/ID--> backend (Python)
//            frontend --/node/ID--> node backend (Node, one event loop) --/leaf/ID--> backend
// Every request carries its test id (path and X-Test-Id), so the true tree of
// each request is known. A span with a parent that is not its true parent, or
// in another trace, is wrong; one without a parent is missing.

import anyTest from 'ava';
import * as path from 'node:path';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';
import { judge, pct, tally, type Tally } from '../helpers/link-tally';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';
import { spawnSync } from 'node:child_process';

const TOPOLOGY = path.join(ROOT, 'test', 'e2e', 'programs', 'topology');
const PY = '/usr/bin/python3';
const REQUESTS = Number(process.env.TRACE_GRAPH_REQUESTS ?? 2000);

const otlp = useOtlpReceiver(anyTest);


ebpfTest.serial('trace trees: thread-per-request and cross-process links are right, none is wrong', async (t) => {
  const backend = await startWorkload(PY, [path.join(TOPOLOGY, 'backend.py')]);
  const nodeBackend = await startWorkload(process.execPath, [path.join(TOPOLOGY, 'node_backend.js'), String(backend.hello.port)]);
  const frontend = await startWorkload(PY, [path.join(TOPOLOGY, 'frontend.py'), String(backend.hello.port), String(nodeBackend.hello.port)]);
  try {
    const agent = await startAgent(['run', '--pid', String(frontend.pid), '--pid', String(backend.pid), '--pid', String(nodeBackend.pid)], {
      env: otlp.env({ OTEL_BSP_MAX_QUEUE_SIZE: '100000' }),
    });
    const driver = spawnSync(process.execPath, [path.join(TOPOLOGY, 'driver.js'), String(frontend.hello.port), String(REQUESTS), '32'], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    t.deepEqual(JSON.parse(driver.stdout), { ok: REQUESTS, failed: 0, count: REQUESTS });
    await sleep(500);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.log(stderr.split('\n').filter((l) => l !== '' && !l.includes('ready')).join('\n'));

    // Index spans by role and test id.
    const byId = new Map<string, Record<string, ReceivedSpan>>();
    const put = (id: string, role: string, s: ReceivedSpan) => {
      let m = byId.get(id);
      if (!m) byId.set(id, (m = {}));
      if (m[role]) t.fail(`two ${role} spans for ${id}`);
      m[role] = s;
    };
    for (const s of otlp.receiver.spans) {
      const pid = s.resource['process.pid'];
      const p = String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? '');
      const m = /\/(order|py|node|leaf)\/(t\d{6})$/.exec(p);
      if (!m) continue;
      const [, route, id] = m as unknown as [string, string, string];
      const kind = s.kind === 2 ? 'S' : 'C';
      const who = pid === frontend.pid ? 'front' : pid === nodeBackend.pid ? 'node' : pid === backend.pid ? 'py' : 'other';
      put(id, `${who}.${kind}.${route}`, s);
    }
    const thread = tally();
    const cross = tally();
    const eventLoop = tally();
    let roots = 0;
    for (const m of byId.values()) {
      const fs = m['front.S.order'];
      if (fs && fs.parentSpanId === '') roots++;
      judge(thread, m['front.C.py'], fs);
      judge(thread, m['front.C.node'], fs);
      judge(cross, m['py.S.py'], m['front.C.py']);
      judge(cross, m['node.S.node'], m['front.C.node']);
      judge(cross, m['py.S.leaf'], m['node.C.leaf']);
      judge(eventLoop, m['node.C.leaf'], m['node.S.node']);
    }
    const line = (name: string, x: Tally) =>
      `${name}: ${x.correct}/${x.total} correct (${pct(x).toFixed(2)}%), ${x.wrong} wrong, ${x.missing} without parent`;
    t.log(`${REQUESTS} requests, ${otlp.receiver.spans.length} spans, ${byId.size} trees, ${roots} frontend roots`);
    t.log(line('thread per request (frontend client -> frontend server)', thread));
    t.log(line('cross process (server -> client of the same request)', cross));
    t.log(line('event loop (node client -> node server)', eventLoop));

    t.is(byId.size, REQUESTS, 'every request produced spans');
    t.is(roots, REQUESTS, 'every frontend SERVER span is a root (the driver is not traced)');
    t.is(thread.total, 2 * REQUESTS);
    t.is(cross.total, 3 * REQUESTS);
    t.is(eventLoop.total, REQUESTS);
    t.is(thread.wrong, 0);
    t.is(cross.wrong, 0);
    t.is(eventLoop.wrong, 0);
    t.true(pct(thread) >= 99.9, line('thread', thread));
    t.true(pct(cross) >= 99.9, line('cross', cross));
  } finally {
    frontend.child.kill();
    nodeBackend.child.kill();
    backend.child.kill();
  }
});
