// Records the Redis goldens (test/fixtures/redis/) from real traffic: a
// redis-server of our own (test/helpers/redis-server.ts), driven by the
// node-redis scenarios (redis-scenarios.ts, one process each) and by
// redis-cli, under `ebpf-otel capture --json`; each connection becomes a
// replay case (test/helpers/protocol-replay.ts format). Needs root and eBPF:
//
//   flock /tmp/bench.lock node dist/test/protocols/redis/record-fixtures.js
//   flock /tmp/bench.lock node dist/test/protocols/redis/record-fixtures.js --bench   (bench/fixtures/redis only)
//
// Writes events.jsonl only; expected.json is written by
// generate-expected.ts --draft and checked by hand (README.md).

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { BIN, ROOT } from '../../helpers/agent';
import { REDIS_CLI, startRedisServer } from '../../helpers/redis-server';
import { parseCase, replay } from '../../helpers/protocol-replay';
import { redisProtocol } from '../../../src/protocols/redis';

const OUT = path.join(ROOT, 'test/fixtures/redis');

interface CaptureLine {
  type: 'open' | 'data' | 'close';
  ts: string;
  pid: number;
  tid: number;
  comm: string;
  conn: string;
  role: 'client' | 'server' | 'unknown';
  dir?: 'egress' | 'ingress';
  local: string;
  remote: string;
  size: number;
  data: string;
  truncated: boolean;
}

function endpoint(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

/** A connection's capture lines as replay lines; `from`: index of the first event kept (a mid-stream join). */
function toCase(events: CaptureLine[], from = 0): string[] {
  const first = events[0]!;
  const [local, lport] = endpoint(first.local);
  const [remote, rport] = endpoint(first.remote);
  const t0 = BigInt(first.ts);
  const rel = (ts: string) => Number(BigInt(ts) - t0) + 1_000_000;
  const conn = {
    connId: 1, tgid: 100, role: first.role, sawStart: from === 0, encrypted: false, transport: 'tcp',
    localAddr: local, localPort: lport, remoteAddr: remote, remotePort: rport,
  };
  const lines = [JSON.stringify({ session: { conn } })];
  const pos = { egress: 0, ingress: 0 };
  events.forEach((e, i) => {
    if (e.type === 'close') {
      lines.push(JSON.stringify({ close: rel(e.ts) }));
      return;
    }
    if (e.type !== 'data') return;
    const dir = e.dir!;
    const data = Buffer.from(e.data, 'base64');
    const t = rel(e.ts);
    if (i >= from) {
      const readable = [...data].every((x) => (x >= 0x20 && x < 0x7f) || x === 0x0d || x === 0x0a);
      const chunk = { side: dir, pos: pos[dir], startNs: t, endNs: t, syscallStart: true };
      lines.push(JSON.stringify(readable ? { ...chunk, text: data.toString('latin1') } : { ...chunk, data: e.data }));
      if (data.length < e.size) lines.push(JSON.stringify({ gap: { side: dir, pos: pos[dir] + data.length, bytes: e.size - data.length, atNs: t } }));
    }
    pos[dir] += e.size;
  });
  return lines;
}

function write(name: string, lines: string[]): void {
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'events.jsonl'), `${lines.join('\n')}\n`);
  console.error(`${name}: ${lines.length - 1} events`);
}

function runNode(scenario: string, port: number): number {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'redis-scenarios.js'), scenario, String(port)], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`${scenario}: ${r.stderr}`);
  console.error(`${scenario}: ${r.stdout.trim().slice(0, 200)}`);
  return r.pid!;
}

function runCli(args: string[], input: string, status = 0): number {
  const r = spawnSync(REDIS_CLI, args, { input, encoding: 'latin1', timeout: 20000 });
  if (r.status !== status) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  console.error(`redis-cli ${args.join(' ')}: ${r.stdout.replace(/\n/g, ' | ').slice(0, 200)}`);
  return r.pid!;
}

async function main(): Promise<void> {
  const server = await startRedisServer();
  const agent = spawn(BIN, ['capture', '--json', '--exe', 'node', '--exe', 'redis-cli', '--pid', String(server.pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  readline.createInterface({ input: agent.stdout! }).on('line', (l) => lines.push(l));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    agent.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('ready')) resolve();
    });
    agent.once('exit', () => reject(new Error(`capture exited: ${stderr}`)));
  });
  const p = server.port;
  const benchOnly = process.argv.includes('--bench');
  let pids: Record<string, number>;
  try {
    pids = benchOnly ? { bench: runNode('bench', p) } : await drive(p);
  } finally {
    agent.kill('SIGINT');
    await new Promise((r) => agent.once('exit', r));
    await server.stop();
  }
  if (benchOnly) writeBench(p, pids['bench']!, lines);
  else split(p, server.pid, pids, lines);
}

/**
 * bench/fixtures/redis/redis: the bench scenario's 4 client connections in
 * the pipeline benchmark's format (bench/fixtures/http2/README.md): a line
 * per syscall `{conn, side, data}` (ingress: client to server), and per
 * connection the records a replay yields (counted by replaying it here).
 */
function writeBench(p: number, pid: number, lines: string[]): void {
  const events = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CaptureLine);
  const conns = new Map<string, CaptureLine[]>();
  for (const e of events) {
    if (e.pid !== pid || e.type !== 'data' || !e.remote.endsWith(`:${p}`)) continue;
    conns.set(e.conn, [...(conns.get(e.conn) ?? []), e]);
  }
  const out: string[] = [];
  const meta: { streams: number }[] = [];
  [...conns.values()].forEach((evs, i) => {
    for (const e of evs) {
      if (e.truncated) throw new Error('a bench syscall was cut by the capture bound');
      // As the server would see it: the client's writes are what the server reads.
      out.push(JSON.stringify({ conn: i, side: e.dir === 'egress' ? 'ingress' : 'egress', data: e.data }));
    }
    const c = parseCase('bench', toCase(evs).join('\n'));
    meta.push({ streams: replay(redisProtocol, c.session, c.events).records.length });
  });
  const dir = path.join(ROOT, 'bench/fixtures/redis/redis');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'events.jsonl'), `${out.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'case.json'), `${JSON.stringify({ connections: meta })}\n`);
  console.error(`bench: ${meta.length} connections, ${JSON.stringify(meta)}`);
}

async function drive(p: number): Promise<Record<string, number>> {
  const pids: Record<string, number> = {};
  for (const s of ['commands', 'resp3', 'pipeline', 'large', 'pubsub2', 'pubsub3']) pids[s] = runNode(s, p);
  // redis-cli reading commands from stdin, one line each (each sent as a RESP array, its reply read before the next).
  pids['cli-lines'] = runCli(['-p', String(p)], 'SET cli:k v1\nGET cli:k\nINCR cli:n\nCONFIG GET maxmemory\nCLIENT SETNAME cli\nOBJECT ENCODING cli:k\nEXPIRE cli:k 100\nSELECT 1\nGET cli:k\nAUTH nobody hunter2\n');
  // redis-cli --pipe: raw protocol written as fast as it goes, inline commands among arrays (the first an array: inline
  // commands alone are not detected); it adds an empty line and its own ECHO marker.
  pids['cli-pipe'] = runCli(['-p', String(p), '--pipe'], '*1\r\n$4\r\nPING\r\nSET pipe:1 a\r\n*3\r\n$3\r\nSET\r\n$6\r\npipe:2\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$6\r\npipe:1\r\nINCR pipe:1\r\n*2\r\n$4\r\nMGET\r\n$6\r\npipe:2\r\n', 1);
  await new Promise((r) => setTimeout(r, 500));
  return pids;
}

function split(p: number, serverPid: number, pids: Record<string, number>, lines: string[]): void {
  const server = { pid: serverPid };
  const events = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CaptureLine);
  const byConn = new Map<string, CaptureLine[]>();
  for (const e of events) {
    if (!e.local.endsWith(`:${p}`) && !e.remote.endsWith(`:${p}`)) continue;
    const k = `${e.pid}/${e.conn}`;
    byConn.set(k, [...(byConn.get(k) ?? []), e]);
  }
  /** Client connections of a process, in the order they opened. */
  const clientConns = (pid: number) => [...byConn.values()].filter((evs) => evs[0]!.pid === pid && evs.some((e) => e.type === 'data'));
  /** The server's side of a client connection. */
  const serverSide = (client: CaptureLine[]) => {
    const [, port] = endpoint(client[0]!.local);
    return [...byConn.values()].find((evs) => evs[0]!.pid === server.pid && endpoint(evs[0]!.remote)[1] === port);
  };
  const one = (name: string, pid: number, index = 0) => {
    const c = clientConns(pid)[index];
    if (c === undefined) throw new Error(`${name}: no connection`);
    return c;
  };
  for (const s of ['commands', 'resp3', 'pipeline', 'large', 'cli-lines', 'cli-pipe']) write(s, toCase(one(s, pids[s]!)));
  write('pubsub2', toCase(one('pubsub2', pids['pubsub2']!, 0)));
  write('pubsub3', toCase(one('pubsub3', pids['pubsub3']!, 0)));
  const commands = one('commands', pids['commands']!);
  const served = serverSide(commands);
  if (served === undefined) throw new Error('commands: no server side');
  write('commands-server', toCase(served));
  // Joined mid-stream: the capture from the 8th data event on (a command write), the ones before not seen.
  const dataIndexes = commands.map((e, i) => (e.type === 'data' ? i : -1)).filter((i) => i >= 0);
  write('commands-midstream', toCase(commands, dataIndexes[7]!));
  const pipe = one('pipeline', pids['pipeline']!);
  const pipeData = pipe.map((e, i) => (e.type === 'data' ? i : -1)).filter((i) => i >= 0);
  write('pipeline-midstream', toCase(pipe, pipeData[3]!));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
