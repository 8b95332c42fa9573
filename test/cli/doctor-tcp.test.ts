import test from 'ava';
import { tcpTracepointCheck, TCP_TRACEPOINTS_USED } from '../../src/cli/doctor';

test('doctor: the TCP tracepoints the agent uses, the ones it does not, and what to do when one is missing', (t) => {
  const present = new Set(['/t/events/sock/inet_sock_set_state', '/t/events/tcp/tcp_retransmit_skb', '/t/events/tcp/tcp_send_reset', '/t/events/tcp/tcp_receive_reset', '/t/events/tcp/tcp_destroy_sock']);
  const all = tcpTracepointCheck((p) => present.has(p), '/t');
  t.true(all.ok);
  t.is(all.detail, `uses ${TCP_TRACEPOINTS_USED.join(', ')}; also present, unused: tcp/tcp_destroy_sock`);
  present.delete('/t/events/tcp/tcp_receive_reset');
  const missing = tcpTracepointCheck((p) => present.has(p), '/t');
  t.false(missing.ok);
  t.regex(missing.detail, /^missing tcp\/tcp_receive_reset: run with --no-tcp-metrics/);
});
