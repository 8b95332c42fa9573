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

SCENARIOS['pubsub2'] = (port) => pubsub(port, 2);
SCENARIOS['pubsub3'] = (port) => pubsub(port, 3);

if (require.main === module) {
  const [name, port] = process.argv.slice(2);
  const run = SCENARIOS[name ?? ''];
  if (run === undefined || port === undefined) {
    console.error(`usage: redis-scenarios.js ${Object.keys(SCENARIOS).join('|')} PORT`);
    process.exit(2);
  }
  run(Number(port)).then(
    (r) => console.log(JSON.stringify(r)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
