import test from 'ava';
import { MAX_ROUTE_SEGMENTS, RouteMatcher } from '../../../src/protocols/http/route';

const heuristic = new RouteMatcher();

const TABLE: [string, string][] = [
  ['/', '/'],
  ['/items/42', '/items/{id}'],
  ['/items/42/', '/items/{id}/'],
  ['/api/v1/users/1234567/orders', '/api/v1/users/{id}/orders'],
  ['/api/v2.1/status', '/api/v2.1/status'],
  ['/oauth2/token', '/oauth2/token'],
  ['/s3/buckets', '/s3/buckets'],
  ['/orders/550e8400-e29b-41d4-a716-446655440000', '/orders/{uuid}'],
  ['/orders/550E8400-E29B-41D4-A716-446655440000/lines/3', '/orders/{uuid}/lines/{id}'],
  ['/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', '/blobs/{hash}'],
  ['/commits/deadbeefcafebabe', '/commits/{hash}'],
  ['/reports/2024-05-17', '/reports/{date}'],
  ['/reports/2024-05-17T10:00:00Z', '/reports/{date}'],
  ['/users/alice@example.com/profile', '/users/{email}/profile'],
  ['/sessions/aB3dE5fG7hJ9kL1mN3pQ5', '/sessions/{token}'],
  ['/users/user123', '/users/{id}'],
  ['/files/my%20file.txt', '/files/{param}'],
  ['/search/a:b', '/search/{param}'],
  [`/x/${'y'.repeat(60)}`, '/x/{token}'],
  ['/health', '/health'],
  ['/static/app.min.js', '/static/app.min.js'],
  ['/a/b/c/d/e/f/g/h/i/j', '/a/b/c/d/e/f/g/h/*'],
  ['/-1/+2', '/{id}/{id}'],
];

for (const [path, route] of TABLE) {
  test(`heuristic route of ${path.length > 50 ? `${path.slice(0, 50)}...` : path}`, (t) => {
    t.is(heuristic.route(path), route);
  });
}

test('user patterns come first; :name is one segment, a trailing * the rest', (t) => {
  const m = new RouteMatcher(['/users/:id', '/files/*', '/exact', 'not-a-pattern']);
  t.is(m.route('/users/alice'), '/users/:id');
  t.is(m.route('/users/42'), '/users/:id');
  t.is(m.route('/users/'), '/users/');
  t.is(m.route('/users/alice/posts'), '/users/alice/posts', 'no pattern: the heuristic keeps words');
  t.is(m.route('/files'), '/files');
  t.is(m.route('/files/'), '/files/*');
  t.is(m.route('/files/a/b/c'), '/files/*');
  t.is(m.route('/exact'), '/exact');
  t.is(m.route('/exact/1'), '/exact/{id}');
});

test('no route for targets that are not paths', (t) => {
  t.is(heuristic.route('*'), undefined);
  t.is(heuristic.route('example.com:443'), undefined);
});

test('routes never keep a digit run of 3+ or a long segment', (t) => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_.~%@:';
  for (let i = 0; i < 3000; i++) {
    const segs = Array.from({ length: 1 + rnd(12) }, () =>
      Array.from({ length: rnd(50) }, () => alphabet[rnd(alphabet.length)]).join(''),
    );
    const route = heuristic.route(`/${segs.join('/')}`)!;
    const out = route.split('/').slice(1);
    t.true(out.length <= MAX_ROUTE_SEGMENTS + 1);
    for (const s of out) {
      t.false(/\d{3}/.test(s), `${s} in ${route}`);
      t.true(s.length <= 40, s);
    }
  }
});
