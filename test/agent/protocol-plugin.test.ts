// A protocol added from the test tree by one folder (./ping-protocol) and one
// registration line: configured from the file and the flags through the one
// schema, documented in the generated table and the usage, parsed by the
// agent run builds, its spans and its own counter exported over OTLP.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import { createAgent } from '../../src/agent/agent';
import { ConfigFileError, parseConfigFile } from '../../src/config/file';
import { UsageError } from '../../src/config/flags';
import { parseRunFlags, resolveRunConfig, runUsage } from '../../src/config/run-config';
import { configSchema, settingsTable } from '../../src/config/schema';
import { PROTOCOLS } from '../../src/protocols/registry';
import { FakeProc } from '../helpers/fake-proc';
import { FakeKernelSession, fakeKernelDeps } from '../helpers/fake-session';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { batch, connRecord, dataRecord } from '../helpers/records';
import { pingProtocol, type PingOptions } from './ping-protocol';

// The one registration line.
const REGISTRY = [...PROTOCOLS, pingProtocol];

function configFile(t: { teardown(f: () => void): void }, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ping-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, text);
  return file;
}

test('its section is validated by the one schema, documented in the generated table and the usage', (t) => {
  t.regex(settingsTable(configSchema(REGISTRY)), /^\| `ping\.error_codes` \| list of code \| \[\] \|  \| `--ping-error-code` \| PONG codes recorded as errors \|$/m);
  t.notRegex(settingsTable(), /ping/, 'the agent own table stays without it');
  t.true(runUsage(REGISTRY).includes('  --ping-error-code CODE   a PONG code recorded as an error (repeatable)\n  --request-timeout'));
  const bad = t.throws(() => parseConfigFile('ping:\n  error_code: [E1]\n  error_codes: [e1]\n', 'a.yaml', {}, REGISTRY), { instanceOf: ConfigFileError });
  t.is(
    bad.message,
    [
      'a.yaml:2:3: ping.error_code: unknown key (did you mean error_codes?)',
      'a.yaml:3:17: ping.error_codes[0]: expected a code of 1 to 8 capitals or digits, got "e1"',
    ].join('\n'),
  );
  t.throws(() => parseConfigFile('ping:\n  error_codes: [E1]\n', 'a.yaml', {}), { message: /a\.yaml:1:1: ping: unknown key/ }, 'unknown without the registration');
  t.throws(() => resolveRunConfig(parseRunFlags(['--pid', '1', '--ping-error-code', 'x'], REGISTRY), {}, { protocols: REGISTRY }), {
    instanceOf: UsageError,
    message: '--ping-error-code: expected a code of 1 to 8 capitals or digits, got "x"',
  });
});

test('configured, parsed, counted and exported end to end by the agent run builds', async (t) => {
  const receiver = await OtlpReceiver.start();
  t.teardown(() => receiver.close());
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  fp.add({ pid: 100, exe: 'usr/bin/pinger', cmdline: ['pinger'] });
  const file = configFile(t, ['selectors:', '  pid: [100]', 'ping:', '  error_codes: [E1]', 'export:', '  endpoint: ${RECEIVER}', '  protocol: grpc'].join('\n'));

  // The file's list, then a flag that replaces it.
  const fromFile = resolveRunConfig(parseRunFlags(['--config', file], REGISTRY), { RECEIVER: receiver.grpcUrl }, { protocols: REGISTRY });
  t.deepEqual((fromFile.options.protocolOptions['ping'] as PingOptions).errorCodes, ['E1']);
  t.is(fromFile.sources['ping.error_codes'], 'file');
  const run = resolveRunConfig(parseRunFlags(['--config', file, '--ping-error-code', 'E2'], REGISTRY), { RECEIVER: receiver.grpcUrl }, { protocols: REGISTRY });
  t.deepEqual((run.options.protocolOptions['ping'] as PingOptions).errorCodes, ['E2']);
  t.is(run.sources['ping.error_codes'], 'flag');

  const session = new FakeKernelSession();
  const agent = createAgent(run.options, fakeKernelDeps(session, fp.proc, REGISTRY));
  await agent.start();
  let pos = { egress: 0, ingress: 0 };
  const data = (dir: 1 | 2, text: string, ts: number) => {
    const side = dir === 1 ? 'egress' : 'ingress';
    const p = pos[side];
    pos = { ...pos, [side]: p + text.length };
    return dataRecord({ connId: 7, dir, pos: p, payload: Buffer.from(text), tsEnter: ts, tsExit: ts + 10, tid: 100, tgid: 100 });
  };
  agent.replay(
    batch([
      connRecord({ type: 'open', connId: 7, role: 1, reason: 1, ts: 500 }),
      data(1, 'PING a\n', 1000),
      data(2, 'PONG OK\n', 2000),
      data(1, 'PING b\n', 3000),
      data(2, 'hello\nPONG E2\n', 4000),
      connRecord({ type: 'close', connId: 7, ts: 5000 }),
    ]),
  );
  await agent.stop();

  const spans = [...receiver.spans].sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
  t.deepEqual(
    spans.map((s) => [s.name, s.kind, s.attributes['ping.code'], s.status.code, s.attributes['error.type'] ?? null]),
    [
      ['PING a', 3, 'OK', 0, null],
      ['PING b', 3, 'E2', 2, 'E2'],
    ],
  );
  t.is(spans[0]!.resource['process.pid'], 100);
  const point = (name: string) => receiver.latestPoints(name, (p) => p.attributes['ebpf_otel.protocol'] === 'ping')[0]?.value;
  t.is(point('ebpf_otel.protocol.records'), 2);
  t.is(point('ebpf_otel.protocol.stray_lines'), 1, 'its own counter, exported without an edit elsewhere');
  t.is(point('ebpf_otel.protocol.parse_errors'), 0);
  t.deepEqual(session.calls, [], 'a connection its protocol parses is never muted');
});
