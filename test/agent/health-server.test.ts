import test from 'ava';
import { AGENT_METRICS } from '../../src/agent/agent';
import { HealthServer, prometheusName, prometheusText } from '../../src/agent/health-server';
import { hostPort } from '../../src/cli/run-command';

test('Prometheus names: dots to underscores, unit suffix, counters end in _total', (t) => {
  t.is(prometheusName('ebpf_otel.capture.events', '{event}', 'counter'), 'ebpf_otel_capture_events_total');
  t.is(prometheusName('ebpf_otel.capture.muted_bytes', 'By', 'counter'), 'ebpf_otel_capture_muted_bytes_total');
  t.is(prometheusName('ebpf_otel.capture.truncated_payload', 'By', 'counter'), 'ebpf_otel_capture_truncated_payload_bytes_total');
  t.is(prometheusName('ebpf_otel.span.queue_size', '{span}', 'gauge'), 'ebpf_otel_span_queue_size');
});

test('the text format: HELP, TYPE, values, labels sorted and escaped, absent fields left out', (t) => {
  const text = prometheusText(AGENT_METRICS, { eventsCaptured: 12, spanQueueSize: 0, recordsByProtocol: { http1: 3, 'a"b\\c': 1 } });
  t.is(
    text,
    [
      '# HELP ebpf_otel_capture_events_total Kernel events received by the agent.',
      '# TYPE ebpf_otel_capture_events_total counter',
      'ebpf_otel_capture_events_total 12',
      '# HELP ebpf_otel_protocol_records_total L7 records produced, per protocol.',
      '# TYPE ebpf_otel_protocol_records_total counter',
      'ebpf_otel_protocol_records_total{ebpf_otel_protocol="a\\"b\\\\c"} 1',
      'ebpf_otel_protocol_records_total{ebpf_otel_protocol="http1"} 3',
      '# HELP ebpf_otel_span_queue_size Spans waiting for export now.',
      '# TYPE ebpf_otel_span_queue_size gauge',
      'ebpf_otel_span_queue_size 0',
      '',
    ].join('\n'),
  );
});

test('HealthServer: 503 while starting, 200 once ready, 503 while stopping; /metrics live; 404 elsewhere', async (t) => {
  let events = 1;
  const server = new HealthServer(AGENT_METRICS, () => ({ eventsCaptured: events }));
  const a = await server.listen('127.0.0.1', 0);
  const get = async (p: string) => {
    const r = await fetch(`http://127.0.0.1:${a.port}${p}`);
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };
  try {
    t.like(await get('/healthz'), { status: 503, body: 'starting\n' });
    server.state = 'ready';
    t.like(await get('/healthz'), { status: 200, body: 'ok\n' });
    events = 42;
    const m = await get('/metrics');
    t.is(m.status, 200);
    t.is(m.type, 'text/plain; version=0.0.4; charset=utf-8');
    t.true(m.body.includes('\nebpf_otel_capture_events_total 42\n'));
    t.like(await get('/other'), { status: 404 });
    server.state = 'stopping';
    t.like(await get('/healthz'), { status: 503, body: 'stopping\n' });
  } finally {
    await server.close();
  }
});

test('--health-listen takes HOST:PORT and [IPv6]:PORT, and refuses anything else', (t) => {
  t.deepEqual(hostPort('--health-listen', '127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  t.deepEqual(hostPort('--health-listen', '[::1]:0'), { host: '::1', port: 0 });
  t.deepEqual(hostPort('--health-listen', 'localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['9464', ':9464', '127.0.0.1:', '127.0.0.1:70000', '::1:9464', 'a:b']) {
    t.throws(() => hostPort('--health-listen', bad), { message: /HOST:PORT/ }, bad);
  }
});
