// Redis end to end with real eBPF (issue 16): a redis-server of our own
// (test/helpers/redis-server.ts) and clients traced by `ebpf-otel run`,
// exporting to a real OTLP receiver. node-redis 6.4 (RESP2 commands with
// errors and a SELECT, RESP3 with pipelining and MULTI/EXEC) and redis-cli
// give exact CLIENT spans and the duration histogram; with only the server
// selected, the same commands are SERVER spans. A value the client writes
// never appears in any exported byte with the default settings.

import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent, startWorkload } from '../helpers/agent';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { REDIS_CLI, startRedisServer } from '../helpers/redis-server';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';
import { SECRET } from '../protocols/redis/redis-scenarios';
import * as http from 'node:http';
import { ROOT } from '../helpers/agent';

const test = ebpfTest.serial;
const otlp = useOtlpReceiver(anyTest);

const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const UNSET = 0;
const ERROR = 2;
const SCENARIOS = path.join(__dirname, '../protocols/redis/redis-scenarios.js');

/** node-redis's connection setup: CLIENT SETINFO twice (Redis 7.0 does not know it: ERR), and with RESP3 a HELLO 3 and CLIENT MAINT_NOTIFICATIONS (ERR too). */
const SETUP2 = ['CLIENT SETINFO', 'CLIENT SETINFO'];
const SETUP3 = ['HELLO', ...SETUP2, 'CLIENT MAINT_NOTIFICATIONS'];
/** The `commands` scenario (RESP2), then `pipeline` (RESP3): every command, in order per connection. */
const COMMANDS = [...SETUP2, 'SET', 'GET', 'GET', 'INCR', 'HSET', 'HGETALL', 'RPUSH', 'LRANGE', 'MGET', 'INCR', 'LPUSH', 'NOPE', 'SELECT', 'SET', 'GET', 'DEL'];
const PIPELINE = [...SETUP3, 'SET', 'SET', 'GET', 'INCR', 'INCR', 'GET', 'MULTI', 'SET', 'INCR', 'GET', 'EXEC', 'MULTI', 'SET', 'LPUSH', 'EXEC'];
const CLI_INPUT = 'SET cli:k v1\nGET cli:k\nINCR cli:k\nSELECT 3\nGET cli:k\n';
/** redis-cli asks for COMMAND DOCS first (for its hints), then sends each line. */
const CLI = ['COMMAND DOCS', 'SET', 'GET', 'INCR', 'SELECT', 'GET'];

const redisSpans = (pid: number): ReceivedSpan[] => otlp.spansOf(pid).filter((s) => s.attributes['db.system.name'] === 'redis');

function assertSecretAbsent(t: ExecutionContext, agentLines: readonly string[], agentStderr: string): void {
  t.true(otlp.receiver.bodies.length > 0);
  for (const b of otlp.receiver.bodies) t.false(b.includes(SECRET), 'an export carries the secret value');
  t.false(agentLines.join('\n').includes(SECRET));
  t.false(agentStderr.includes(SECRET));
}

test('node-redis and redis-cli: a CLIENT span per command, exact names, errors, pipelined commands each a span; the secret value in no exported byte', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const client = await startWorkload(process.execPath, [SCENARIOS, '--wait', 'commands,pipeline', String(server.port)]);
  const agent = await startAgent(['run', '--pid', String(client.pid), '--exe', 'redis-cli'], { env: otlp.env() });
  client.go();
  const got = (await client.result()) as unknown as unknown[][];
  t.is(got[0]![1], SECRET, 'the client read the secret back');
  const cli = spawnSync(REDIS_CLI, ['-p', String(server.port)], { input: CLI_INPUT, encoding: 'utf8' });
  t.is(cli.stdout, 'OK\nv1\nERR value is not an integer or out of range\n\nOK\n\n');
  await sleep(300);
  const stopped = await agent.stop();
  t.is(stopped.code, 0, stopped.stderr);

  const spans = redisSpans(client.pid);
  for (const s of spans) t.is(s.kind, CLIENT_KIND);
  const names = spans.map((s) => s.name);
  t.deepEqual([...names].sort(), [...COMMANDS, ...PIPELINE].sort());
  const at = (name: string, text: string) => spans.find((s) => s.name === name && s.attributes['db.query.text'] === text);
  // Sanitized text, namespace, status.
  const set = at('SET', 'SET user:1 ?')!;
  t.like(set.attributes, { 'db.system.name': 'redis', 'db.operation.name': 'SET', 'db.namespace': '0', 'server.address': '127.0.0.1', 'server.port': server.port });
  t.is(set.status.code, UNSET);
  t.is(at('SET', 'SET in:2 ?')!.attributes['db.namespace'], '2', 'after SELECT 2');
  t.is(at('LRANGE', 'LRANGE l:1 ? ?')!.attributes['db.response.returned_rows'], 3);
  const wrongtype = at('LPUSH', 'LPUSH user:1 ?')!;
  t.deepEqual(wrongtype.status, { code: ERROR, message: 'WRONGTYPE Operation against a key holding the wrong kind of value' });
  t.like(wrongtype.attributes, { 'db.response.status_code': 'WRONGTYPE', 'error.type': 'WRONGTYPE' });
  const nope = at('NOPE', 'NOPE ?')!;
  t.deepEqual(nope.status, { code: ERROR, message: "ERR unknown command '?', with args beginning with: '?' " });
  t.is(at('INCR', 'INCR user:1')!.attributes['error.type'], 'ERR');
  // The pipelined writes: 6 commands in one write, each its own span with its own key.
  for (const key of ['p:1', 'p:2']) t.truthy(at('SET', `SET ${key} ?`), key);
  t.is(spans.filter((s) => s.name === 'INCR' && s.attributes['db.query.text'] === 'INCR p:n').length, 2);
  const execs = spans.filter((s) => s.name === 'EXEC');
  t.deepEqual(execs.map((s) => s.attributes['db.operation.batch.size']).sort(), [2, 3]);

  // redis-cli, traced by --exe.
  const cliSpans = redisSpans(cli.pid!);
  t.deepEqual(cliSpans.map((s) => s.name), CLI);
  t.deepEqual(cliSpans.map((s) => s.attributes['db.query.text']), ['COMMAND DOCS', 'SET cli:k ?', 'GET cli:k', 'INCR cli:k', 'SELECT ?', 'GET cli:k']);
  t.deepEqual(cliSpans.map((s) => s.attributes['db.namespace']), ['0', '0', '0', '0', '3', '3']);
  t.deepEqual(cliSpans.map((s) => s.status.code), [UNSET, UNSET, UNSET, ERROR, UNSET, UNSET]);

  // The duration histogram: one point per command, by operation, no keys or values among its attributes.
  const points = otlp.receiver.latestPoints('db.client.operation.duration', (p) => p.attributes['db.system.name'] === 'redis');
  const count = (op: string) => points.filter((p) => p.attributes['db.operation.name'] === op).reduce((a, p) => a + (p.histogram?.count ?? 0), 0);
  t.is(points.reduce((a, p) => a + (p.histogram?.count ?? 0), 0), spans.length + cliSpans.length);
  t.is(count('SET'), 2 + 4 + 1);
  t.is(count('GET'), 3 + 3 + 2);
  t.is(count('EXEC'), 2);
  for (const p of points) {
    t.deepEqual(Object.keys(p.attributes).filter((k) => !['db.system.name', 'db.namespace', 'db.operation.name', 'db.response.status_code', 'error.type', 'server.address', 'server.port'].includes(k)), []);
  }
  t.is(otlp.counter('ebpf_otel.protocol.parse_errors', 'redis'), 0);
  assertSecretAbsent(t, stopped.lines, stopped.stderr);
});

test('only redis-server selected: the same commands are SERVER spans, the client address from the connection; a nested reply cut by the capture bound is dropped, counted', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
  const cli = spawn(REDIS_CLI, ['-p', String(server.port)], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
  cli.stdin.end(CLI_INPUT);
  await new Promise((r) => cli.once('close', r));
  t.is(out, 'OK\nv1\nERR value is not an integer or out of range\n\nOK\n\n');
  await sleep(300);
  const stopped = await agent.stop();
  t.is(stopped.code, 0, stopped.stderr);
  const spans = redisSpans(server.pid);
  // COMMAND DOCS's ~300 KB reply leaves the server in writes larger than the capture bound (16 KiB): the gaps fall
  // among its thousands of small elements, not inside one bulk body, so its end is not known and the command is
  // dropped (counted), never given a guessed reply. redis-cli reads in 16 KiB pieces: its side sees every byte.
  t.deepEqual(spans.map((s) => s.name), CLI.slice(1));
  t.is(otlp.counter('ebpf_otel.protocol.commands_dropped', 'redis'), 1);
  for (const s of spans) {
    t.is(s.kind, SERVER_KIND);
    t.like(s.attributes, { 'server.address': '127.0.0.1', 'server.port': server.port, 'client.address': '127.0.0.1' });
  }
  t.deepEqual(spans.map((s) => s.status.code), [UNSET, UNSET, ERROR, UNSET, UNSET]);
  const points = otlp.receiver.latestPoints('ebpf_otel.db.server.operation.duration', (p) => p.attributes['db.system.name'] === 'redis');
  t.is(points.reduce((a, p) => a + (p.histogram?.count ?? 0), 0), spans.length);
  t.is(new Set(spans.map((s) => s.attributes['client.port'])).size, 1, 'one connection');
});

/** GETs from this (untraced) process, `concurrency` at a time, each on its own connection. */
async function drive(port: number, ids: number[], concurrency: number): Promise<void> {
  const queue = [...ids];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/item/${id}`, agent: false }, (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
          })
          .on('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

test('an HTTP service calling Redis per request: one request at a time, its two Redis CLIENT spans are children of its SERVER span; 8 at a time, none under a wrong one', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const service = await startWorkload(process.execPath, [path.join(ROOT, 'test/e2e/programs/redis_http_node.js'), String(server.port)]);
  t.teardown(() => service.child.kill());
  const agent = await startAgent(['run', '--pid', String(service.pid)], { env: otlp.env() });
  const port = service.hello['port'] as number;
  const serial = Array.from({ length: 20 }, (_, i) => i);
  const concurrent = Array.from({ length: 40 }, (_, i) => 100 + i);
  await drive(port, serial, 1);
  await drive(port, concurrent, 8);
  await sleep(500);
  const stopped = await agent.stop();
  t.is(stopped.code, 0, stopped.stderr);
  const spans = otlp.spansOf(service.pid);
  const servers = new Map<string, ReceivedSpan>();
  for (const s of spans) if (s.kind === SERVER_KIND && typeof s.attributes['url.path'] === 'string') servers.set((s.attributes['url.path'] as string).split('/').pop()!, s);
  const redis = spans.filter((s) => s.attributes['db.system.name'] === 'redis' && /^(GET item|INCR hits):/.test(String(s.attributes['db.query.text'])));
  const judge = (ids: number[]) => {
    let right = 0;
    const wrong: string[] = [];
    for (const id of ids) {
      const parent = servers.get(String(id));
      const mine = redis.filter((s) => String(s.attributes['db.query.text']).endsWith(`:${id}`));
      for (const s of mine) {
        if (parent !== undefined && s.parentSpanId === parent.spanId && s.traceId === parent.traceId) right++;
        else wrong.push(`${s.attributes['db.query.text']} parent ${s.parentSpanId || '(none)'}`);
      }
      if (mine.length !== 2) wrong.push(`${id}: ${mine.length} redis spans`);
    }
    return { right, wrong };
  };
  t.is(servers.size, serial.length + concurrent.length);
  const one = judge(serial);
  t.deepEqual(one, { right: 40, wrong: [] }, 'one request at a time');
  const many = judge(concurrent);
  const none = many.wrong.filter((w) => w.endsWith('(none)')).length;
  t.log(`8 concurrent requests: ${many.right} of 80 Redis spans under their request, ${none} without a parent, ${many.wrong.length - none} under another span`);
  t.deepEqual(many.wrong.filter((w) => !w.includes('parent')), [], 'every request made its two Redis spans');
  // One event loop serving several requests: which one a Redis command belongs to is not in the syscalls, so the
  // trace graph links only while a single request is in flight (src/correlate/trace-graph.ts rule 4): missing, never wrong.
  t.is(many.wrong.length - none, 0, 'no Redis span under another request');
});
