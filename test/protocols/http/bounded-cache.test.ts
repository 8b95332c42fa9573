// BoundedCache: the parse caches' store (routes by path, parsed Host headers).

import test from 'ava';
import { BoundedCache, MAX_CACHED_KEY_LENGTH } from '../../../src/protocols/http/bounded-cache';

test('BoundedCache: a full cache empties before storing; long keys are not stored', (t) => {
  const c = new BoundedCache<number>(2);
  t.false(c.set('a', 1));
  t.false(c.set('b', 2));
  t.true(c.set('c', 3));
  t.is(c.size, 1);
  t.is(c.get('a'), undefined);
  t.is(c.get('c'), 3);
  t.false(c.set('x'.repeat(MAX_CACHED_KEY_LENGTH + 1), 4));
  t.is(c.get('x'.repeat(MAX_CACHED_KEY_LENGTH + 1)), undefined);
});
