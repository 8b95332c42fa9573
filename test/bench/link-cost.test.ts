// The pure parts of bench/link-cost.ts: the --target list, the arm order
// per round, the median and the nginx configuration it writes.

import test from 'ava';
import { armOrder, median, nginxBenchConfig, parseTargets } from '../../bench/link-cost';

test('link cost: --target takes go and nginx, in the order given, each once', (t) => {
  t.deepEqual(parseTargets('go,nginx'), ['go', 'nginx']);
  t.deepEqual(parseTargets('nginx,go,nginx'), ['nginx', 'go']);
  t.deepEqual(parseTargets('go'), ['go']);
  t.throws(() => parseTargets('go,node'), { message: '--target takes a list of go, nginx; got "node"' });
});

test('link cost: the arm order rotates by one each round, so each arm goes first in turn', (t) => {
  const arms = ['links', '--no-link-go', 'no agent'];
  t.deepEqual(armOrder(arms, 0), ['links', '--no-link-go', 'no agent']);
  t.deepEqual(armOrder(arms, 1), ['--no-link-go', 'no agent', 'links']);
  t.deepEqual(armOrder(arms, 2), ['no agent', 'links', '--no-link-go']);
  t.deepEqual(armOrder(arms, 3), ['links', '--no-link-go', 'no agent']);
  t.deepEqual(armOrder(['a', 'b'], 1), ['b', 'a']);
});

test('link cost: median of odd and even counts', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median([7]), 7);
});

test('link cost: nginx proxies its port to its own return-200 server over a keep-alive upstream', (t) => {
  const conf = nginxBenchConfig('/tmp/x', 20001, 20002, 16);
  t.true(conf.includes('pid /tmp/x/nginx.pid;'));
  t.true(conf.includes('upstream up { server 127.0.0.1:20002; keepalive 16; }'));
  t.true(conf.includes('listen 127.0.0.1:20001;\n    keepalive_requests 1000000;\n    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }'));
  t.true(conf.includes('listen 127.0.0.1:20002;\n    keepalive_requests 1000000;\n    location / { return 200 "ok\\n"; }'));
  t.is(conf.match(/listen /g)!.length, 2);
});
