// Traffic for the Redis goldens and the e2e test: one node-redis scenario
// per process run (so that a capture tells its connections apart by pid).
//   node dist/test/protocols/redis/redis-scenarios.js <scenario> <port>
// Prints one JSON line with what the client got back.

import { createClient } from 'redis';

export const SECRET = 's3cr3t-value-9f2c';

// eslint-disable-next-line @typescript-eslint/explicit-function-return-type
async function connect(port: number, resp: 2 | 3) {
  const c = createClient({ socket: { host: '127.0.0.1', port }, RESP: resp });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** The reply or the error's message. */
async function settle<T>(p: Promise<T>): Promise<T | string> {
  try {
    return await p;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

export const SCENARIOS: Record<string, (port: number) => Promise<unknown>> = {
  /** Plain commands over RESP2, a secret value, errors, SELECT. */
  async commands(port) {
    const c = await connect(port, 2);
    const out: unknown[] = [];
    out.push(await c.set('user:1', SECRET));
    out.push(await c.get('user:1'));
    out.push(await c.get('missing'));
    out.push(await c.incr('counter'));
    out.push(await c.hSet('h:1', { name: 'ann', age: '7' }));
    out.push(await c.hGetAll('h:1'));
    out.push(await c.rPush('l:1', ['a', 'b', 'c']));
    out.push(await c.lRange('l:1', 0, -1));
    out.push(await c.mGet(['user:1', 'missing']));
    out.push(await settle(c.incr('user:1')));
    out.push(await settle(c.lPush('user:1', 'x')));
    out.push(await settle(c.sendCommand(['NOPE', 'arg'])));
    out.push(await c.select(2));
    out.push(await c.set('in:2', 'v'));
    out.push(await c.get('in:2'));
    out.push(await c.del(['in:2', 'user:1']));
    c.destroy();
    return out;
  },
  /** RESP3: HELLO 3, maps, sets, doubles, nulls. */
  async resp3(port) {
    const c = await connect(port, 3);
    const out: unknown[] = [];
    out.push(await c.hSet('h:3', { f: 'v' }));
    out.push(await c.hGetAll('h:3'));
    out.push(await c.sAdd('s:3', ['x', 'y']));
    out.push(await c.sMembers('s:3'));
    out.push(await c.zAdd('z:3', { score: 1.5, value: 'm' }));
    out.push(await c.zScore('z:3', 'm'));
    out.push(await c.get('missing'));
    out.push(await c.exists('h:3'));
    out.push(await settle(c.hGet('s:3', 'f')));
    out.push(await c.clientSetName('scenario'));
    c.destroy();
    return out;
  },
  /** Pipelined commands (written together) and a MULTI/EXEC transaction. */
  async pipeline(port) {
    const c = await connect(port, 3);
    const out: unknown[] = [];
    out.push(await Promise.all([c.set('p:1', 'a'), c.set('p:2', 'b'), c.get('p:1'), c.incr('p:n'), c.incr('p:n'), c.get('p:2')]));
    out.push(await c.multi().set('t:1', 'x').incr('t:n').get('t:1').exec());
    out.push(await settle(c.multi().set('t:2', 'y').lPush('t:2', 'z').exec()));
    c.destroy();
    return out;
  },
  /** A 1 MiB value written and read back. */
  async large(port) {
    const c = await connect(port, 2);
    const big = 'v'.repeat(1024 * 1024);
    const out: unknown[] = [];
    out.push(await c.set('big', big));
    out.push((await c.get('big'))?.length);
    out.push(await c.strLen('big'));
    c.destroy();
    return out;
  },
};

async function pubsub(port: number, resp: 2 | 3): Promise<unknown> {
  const sub = await connect(port, resp);
  const pub = await connect(port, resp);
  const got: string[] = [];
  await sub.subscribe(['news', 'sport'], (m, ch) => got.push(`${ch}:${m}`));
  await pub.publish('news', 'n1');
  await pub.publish('sport', 's1');
  await pub.publish('news', 'n2');
  for (let i = 0; i < 50 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  await sub.unsubscribe(['news', 'sport']);
  const after = await sub.ping();
  sub.destroy();
  pub.destroy();
  return { got, after };
}

/**
 * The pipeline benchmark's traffic (bench/fixtures/redis): 4 connections one
 * after the other, each 250 commands awaited one by one (a write and a read
 * each) over a mix of strings, hashes, lists and counters.
 */
async function bench(port: number): Promise<unknown> {
  const value = JSON.stringify({ id: 7, name: 'item-7', price: 19.99, tags: ['a', 'b'] });
  const counts: number[] = [];
  for (let conn = 0; conn < 4; conn++) {
    const c = await connect(port, 2);
    let n = 0;
    for (let i = 0; n < 250; i++) {
      const k = `item:${conn}:${i % 50}`;
      const ops = [
        () => c.set(k, value),
        () => c.get(k),
        () => c.hSet(`h:${i % 10}`, { name: 'ann', age: '7', city: 'x' }),
        () => c.hGetAll(`h:${i % 10}`),
        () => c.incr('hits'),
        () => c.lPush('recent', k),
        () => c.lRange('recent', 0, 9),
        () => c.mGet([k, 'item:0:1', 'missing']),
        () => c.expire(k, 300),
        () => c.exists(k),
      ];
      for (const op of ops) {
        if (n === 250) break;
        await op();
        n++;
      }
    }
    counts.push(n);
    c.destroy();
  }
  return counts;
}

SCENARIOS['bench'] = bench;
SCENARIOS['pubsub2'] = (port) => pubsub(port, 2);
SCENARIOS['pubsub3'] = (port) => pubsub(port, 3);

/**
 *   redis-scenarios.js <scenario> <port>            runs it now
 *   redis-scenarios.js --wait <s1,s2,...> <port>     prints {"ready":true}, runs them in turn on "go" (e2e tests attach first)
 */
async function main(argv: string[]): Promise<void> {
  const wait = argv[0] === '--wait';
  const [names, port] = wait ? argv.slice(1) : argv;
  const runs = (names ?? '').split(',').map((n) => SCENARIOS[n]);
  if (port === undefined || runs.length === 0 || runs.some((r) => r === undefined)) {
    console.error(`usage: redis-scenarios.js [--wait] ${Object.keys(SCENARIOS).join('|')}[,...] PORT`);
    process.exit(2);
  }
  if (wait) {
    console.log(JSON.stringify({ ready: true, pid: process.pid }));
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  }
  const results: unknown[] = [];
  for (const run of runs) results.push(await run!(Number(port)));
  console.log(JSON.stringify(runs.length === 1 ? results[0] : results));
  process.stdin.destroy();
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
