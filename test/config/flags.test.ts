import test from 'ava';
import { UsageError, durationSeconds, selectorsFrom } from '../../src/config/flags';

test('selectors from flags, validated', (t) => {
  t.deepEqual(selectorsFrom({ pid: ['12', '13'], exe: ['python3'], port: ['8080'], all: false }), [
    { kind: 'pid', pid: 12 },
    { kind: 'pid', pid: 13 },
    { kind: 'exe', pattern: 'python3' },
    { kind: 'port', port: 8080 },
  ]);
  t.throws(() => selectorsFrom({ pid: ['x'] }), { instanceOf: UsageError, message: /--pid takes a whole number/ });
  t.throws(() => selectorsFrom({ port: ['70000'] }), { instanceOf: UsageError });
  t.throws(() => selectorsFrom({ exe: ['/usr/bin/python3'] }), { message: /not a path/ });
  t.throws(() => selectorsFrom({ container: ['xyz'] }), { message: /container id/ });
});

test('durations', (t) => {
  t.is(durationSeconds('--d', '30s'), 30);
  t.is(durationSeconds('--d', '500ms'), 0.5);
  t.is(durationSeconds('--d', '2m'), 120);
  t.is(durationSeconds('--d', '7'), 7);
  t.throws(() => durationSeconds('--d', 'soon'), { instanceOf: UsageError });
});
