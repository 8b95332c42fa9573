// Golden captures of Redis connections (test/fixtures/redis/): real
// node-redis and redis-cli traffic against a redis-server of our own,
// recorded by record-fixtures.ts with `ebpf-otel capture --json`, seen from
// the client, the server, or joined mid-stream. Each is replayed whole,
// with both interleavings of the two directions, byte by byte and split at
// every position: records, stats and observer signals must equal
// expected.json (checked by hand: test/fixtures/redis/README.md) every time,
// and every started command must end in exactly one record or abandon.

import test from 'ava';
import * as path from 'node:path';
import { redisProtocol } from '../../../src/protocols/redis';
import { assertEveryVariant, listCases, loadCase, variants } from '../../helpers/protocol-replay';
import { ROOT } from '../../helpers/agent';
import { SECRET } from './redis-scenarios';

export const REDIS_FIXTURES = path.join(ROOT, 'test/fixtures/redis');

for (const dir of listCases(REDIS_FIXTURES)) {
  const name = path.basename(dir);
  test(`golden ${name}`, async (t) => {
    const { input, expected } = loadCase(dir);
    await assertEveryVariant(t, name, variants(redisProtocol, input), expected);
  });
}

test('the secret value of the commands scenario is in the capture but in no record unless query text is raw', (t) => {
  for (const dir of listCases(REDIS_FIXTURES)) {
    const { input, expected } = loadCase(dir);
    const raw = input.session.options?.queryText === 'raw';
    const captured = input.events.some((e) => e.kind === 'chunk' && e.chunk.data.includes(SECRET));
    const recorded = JSON.stringify(expected.records).includes(SECRET);
    if (!raw) t.false(recorded, path.basename(dir));
    if (path.basename(dir) === 'commands') t.true(captured);
  }
});
