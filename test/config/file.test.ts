import * as path from 'node:path';
import test from 'ava';
import { UsageError } from '../../src/config/flags';
import { ConfigFileError, parseConfigFile } from '../../src/config/file';

/** The problems a file has, as printed (one line each). */
function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigFile(text, 'agent.yaml', env);
  } catch (e) {
    if (e instanceof ConfigFileError) return e.message.split('\n');
    throw e;
  }
  return [];
}

const lines = (...l: string[]) => l.join('\n') + '\n';

test('an unknown key names its near miss, or the section it belongs to, or what is known', (t) => {
  t.deepEqual(problems(lines('export:', '  endpont: http://c:4318')), ['agent.yaml:2:3: export.endpont: unknown key (did you mean endpoint?)']);
  t.deepEqual(problems(lines('http:', '  capture-query: true')), ['agent.yaml:2:3: http.capture-query: unknown key (did you mean capture_query?)']);
  t.deepEqual(problems(lines('# top', 'endpoint: http://c:4318')), ['agent.yaml:2:1: endpoint: unknown key here (did you mean export.endpoint?)']);
  t.deepEqual(problems(lines('log:', '  colour: true')), ['agent.yaml:2:3: log.colour: unknown key (known here: level)']);
});

test('a wrong type says what was expected and what was found', (t) => {
  t.deepEqual(problems(lines('selectors:', '  pid: 1234')), ['agent.yaml:2:8: selectors.pid: expected a list (in brackets: [1234]), got the number 1234']);
  t.deepEqual(problems(lines('selectors:', '  port: ["8080"]')), ['agent.yaml:2:10: selectors.port[0]: expected a whole number from 1 to 65535, got the string "8080"']);
  t.deepEqual(problems(lines('http:', '  capture_query: yes')), ['agent.yaml:2:18: http.capture_query: expected true or false, got the string "yes"']);
  t.deepEqual(problems(lines('export:', '  headers:', '    x-tenant: 42')), [
    'agent.yaml:3:15: export.headers.x-tenant: expected a string, got the number 42 (quote it if it is meant as text)',
  ]);
  t.deepEqual(problems(lines('export: http://c:4318')), ['agent.yaml:1:9: export: expected a mapping of endpoint, traces_endpoint, metrics_endpoint, logs_endpoint, protocol, headers, compression, timeout, insecure, tls, metric_interval, batch, got the string "http://c:4318"']);
  t.deepEqual(problems(lines('- pid')), ['agent.yaml:1:1: the file must be a mapping of settings (key: value), got a list']);
});

test('a bad enum value lists the allowed ones and the near miss', (t) => {
  t.deepEqual(problems(lines('export:', '  protocol: grcp')), [
    'agent.yaml:2:13: export.protocol: expected one of grpc, http/protobuf, got "grcp" (did you mean grpc?)',
  ]);
  t.deepEqual(problems(lines('protocols:', '  enabled: [http3]')), ['agent.yaml:2:13: protocols.enabled[0]: expected one of tls, http2, http1, redis, got "http3" (did you mean http2?)']);
  t.deepEqual(problems(lines('log:', '  level: verbose')), ['agent.yaml:2:10: log.level: expected one of debug, info, warn, error, got "verbose"']);
});

test('a duration needs its unit', (t) => {
  t.deepEqual(problems(lines('capture:', '  request_timeout: 30 seconds')), [
    'agent.yaml:2:20: capture.request_timeout: expected a duration with its unit, such as 30s, 500ms or 2m, got "30 seconds"',
  ]);
  t.deepEqual(problems(lines('export:', '  batch:', '    schedule_delay: 5000')), [
    'agent.yaml:3:21: export.batch.schedule_delay: expected a duration with its unit, such as 30s, 500ms or 2m, got the number 5000 (write the unit: seconds or milliseconds?)',
  ]);
  t.deepEqual(problems(lines('duration: 0s')), ['agent.yaml:1:11: duration: expected a duration above zero, got "0s"']);
  const ok = parseConfigFile(lines('export:', '  timeout: 500ms', '  batch:', '    schedule_delay: 0s', 'duration: 2m'), 'a.yaml', {}).values;
  t.is(ok.export?.timeout, 0.5);
  t.is(ok.export?.batch?.schedule_delay, 0);
  t.is(ok.duration, 120);
});

test('duplicate keys are errors, in sections and in maps', (t) => {
  t.deepEqual(problems(lines('log:', '  level: info', 'sampling:', '  sampler: always_on', 'log:', '  level: debug')), [
    'agent.yaml:5:1: log: duplicate key (first at line 1)',
  ]);
  t.deepEqual(problems(lines('export:', '  headers:', '    x-a: "1"', '    x-a: "2"')), ['agent.yaml:4:5: export.headers.x-a: duplicate key (first at line 3)']);
});

test('YAML syntax errors carry their line; nothing else is reported from a broken file', (t) => {
  t.deepEqual(problems(lines('selectors:', '  exe: [python3', 'log:', '  level: loud')), [
    'agent.yaml:3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
  t.deepEqual(problems(lines('export:', '  endpoint: "http://c:4318')), ['agent.yaml:3:1: YAML: Missing closing "quote']);
  t.deepEqual(problems(lines('log:', '  level: info', '---', 'log:', '  level: debug')), [
    'agent.yaml:3:1: YAML: the file holds more than one YAML document (---); use one',
  ]);
});

test('${VAR} and ${VAR:-default}; a missing variable without default is an error at its value', (t) => {
  const text = lines('export:', '  headers:', '    authorization: Bearer ${OTLP_TOKEN}', '    x-tenant: ${TENANT:-shop}', '  endpoint: ${ENDPOINT:-http://c:4318}');
  t.deepEqual(problems(text), [
    'agent.yaml:3:20: export.headers.authorization: environment variable OTLP_TOKEN is not set (write ${OTLP_TOKEN:-default} to give a default)',
  ]);
  const v = parseConfigFile(text, 'a.yaml', { OTLP_TOKEN: 's3cret', TENANT: '' }).values;
  t.deepEqual(v.export?.headers, { authorization: 'Bearer s3cret', 'x-tenant': 'shop' });
  t.is(v.export?.endpoint, 'http://c:4318');
  // Numbers and booleans from the environment are typed by the setting.
  // In [brackets] a { is YAML syntax: quote it there, or use a block list.
  const typed = parseConfigFile(lines('selectors:', '  port: ["${PORT}"]', '  pid:', '    - ${PID}', 'http:', '  capture_query: ${Q}'), 'a.yaml', {
    PORT: '8080',
    PID: '42',
    Q: 'true',
  }).values;
  t.deepEqual(typed.selectors?.port, [8080]);
  t.deepEqual(typed.selectors?.pid, [42]);
  t.is((typed['http'] as { capture_query?: boolean } | undefined)?.capture_query, true);
  t.deepEqual(problems(lines('selectors:', '  port: ["${PORT}"]'), { PORT: 'http' }), [
    'agent.yaml:2:10: selectors.port[0]: expected a whole number from 1 to 65535, got "http" (after substitution)',
  ]);
  t.deepEqual(problems(lines('selectors:', '  port: ["8080"]')), ['agent.yaml:2:10: selectors.port[0]: expected a whole number from 1 to 65535, got the string "8080"']);
});

test('every problem at once, in file order', (t) => {
  const p = problems(
    lines(
      'selectors:',
      '  exe: [/usr/bin/python3]',
      'export:',
      '  protocol: udp',
      '  endpont: x',
      'capture:',
      '  bytes: 20000',
      'health:',
      '  listen: localhost',
    ),
  );
  t.deepEqual(p, [
    'agent.yaml:2:9: selectors.exe[0]: takes an executable name or glob, not a path: "/usr/bin/python3"',
    'agent.yaml:4:13: export.protocol: expected one of grpc, http/protobuf, got "udp"',
    'agent.yaml:5:3: export.endpont: unknown key (did you mean endpoint?)',
    'agent.yaml:7:10: capture.bytes: expected a whole number from 0 to 16384, got the number 20000',
    'agent.yaml:9:11: health.listen: expected HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got "localhost"',
  ]);
  const err = t.throws(() => parseConfigFile('log: {level: x}\n', 'a.yaml', {}));
  t.true(err instanceof UsageError, 'exit code 2, as other usage errors');
});

test('a header to capture that is redacted is refused; removing a default from the redaction list is a warning', (t) => {
  t.deepEqual(problems(lines('http:', '  capture_headers:', '    request: [X-Request-Id, Authorization]', '    response: [set-cookie]')), [
    'agent.yaml:3:29: http.capture_headers.request[1]: authorization is in the redaction list (the default one): its value is never recorded. Remove it here, or remove it from redaction.headers deliberately',
    'agent.yaml:4:16: http.capture_headers.response[0]: set-cookie is in the redaction list (the default one): its value is never recorded. Remove it here, or remove it from redaction.headers deliberately',
  ]);
  t.deepEqual(problems(lines('redaction:', '  headers: [x-api-key]', 'http:', '  capture_headers:', '    request: [X-API-Key]')), [
    'agent.yaml:5:15: http.capture_headers.request[0]: x-api-key is in the redaction list (redaction.headers): its value is never recorded. Remove it here, or remove it from redaction.headers deliberately',
  ]);
  const f = parseConfigFile(lines('redaction:', '  headers: [Authorization, proxy-authorization, x-api-key]', 'http:', '  capture_headers:', '    request: [cookie]'), 'a.yaml', {});
  t.deepEqual(f.values.redaction?.headers, ['authorization', 'proxy-authorization', 'x-api-key']);
  t.deepEqual((f.values['http'] as { capture_headers?: { request?: string[] } }).capture_headers?.request, ['cookie']);
  t.deepEqual(f.warnings, [
    'a.yaml:2:12: redaction.headers: removes cookie, set-cookie from the default redaction list: their values are recorded when listed in http.capture_headers',
  ]);
  t.deepEqual(problems(lines('http:', '  capture_headers:', '    request: ["x request"]')), [
    "agent.yaml:3:15: http.capture_headers.request[0]: expected a header name (letters, digits and !#$%&'*+-.^_`|~), got \"x request\"",
  ]);
});

test('empty values and ~ mean unset; an empty file is no settings; anchors resolve; relative TLS paths are the file directory', (t) => {
  t.deepEqual(parseConfigFile('', 'a.yaml', {}).values, {});
  t.deepEqual(parseConfigFile('# nothing\n', 'a.yaml', {}).values, {});
  t.deepEqual(parseConfigFile(lines('export:', '  endpoint: ~', '  protocol:', 'log:'), 'a.yaml', {}).values, { export: {} });
  const v = parseConfigFile(
    lines('export:', '  tls:', '    ca_file: certs/ca.pem', '    key_file: /abs/key.pem', 'http:', '  capture_headers:', '    request: &h [x-request-id]', '    response: *h'),
    '/etc/ebpf-otel/agent.yaml',
    {},
  );
  t.is(v.values.export?.tls?.ca_file, path.resolve('/etc/ebpf-otel/certs/ca.pem'));
  t.is(v.values.export?.tls?.key_file, '/abs/key.pem');
  t.deepEqual((v.values['http'] as { capture_headers?: unknown }).capture_headers, { request: ['x-request-id'], response: ['x-request-id'] });
  t.deepEqual(problems(lines('selectors:', '  exe: *r')), ['agent.yaml:2:3: selectors.exe: alias *r points to no anchor']);
});

test('resource attributes: typed values; service.instance.id is refused', (t) => {
  const v = parseConfigFile(lines('resource:', '  attributes:', '    service.namespace: shop', '    replicas: 3', '    canary: false'), 'a.yaml', {}).values;
  t.deepEqual(v.resource?.attributes, { 'service.namespace': 'shop', replicas: 3, canary: false });
  t.deepEqual(problems(lines('resource:', '  attributes:', '    service.instance.id: abc')), [
    'agent.yaml:3:5: resource.attributes.service.instance.id: service.instance.id identifies one process: it cannot be given to all of them (set it in the process own OTEL_RESOURCE_ATTRIBUTES)',
  ]);
});
