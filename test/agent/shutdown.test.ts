// The agent's stop under a collector that never answers: bounded by
// shutdown_timeout (from the configuration file), and its exit summary says
// what each signal lost.

import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { createAgent } from '../../src/agent/agent';
import { PROC_PID_INIT_INO } from '../../src/capture/pid-namespace';
import { parseRunArgs } from '../../src/cli/run-command';
import { ProcFs } from '../../src/util/procfs';
import { silentLogger } from '../../src/util/log';
import { FakeProc } from '../helpers/fake-proc';
import { FakeKernelSession, opener } from '../helpers/fake-session';
import { traceRecord } from '../otel/fixtures';

test('stop under a collector that never answers ends within shutdown_timeout; the summary says what each signal lost', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-shutdown-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, 'shutdown_timeout: 600ms\n');
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  fp.add({ pid: 100, exe: 'usr/bin/app', cmdline: ['app'] });
  const options = parseRunArgs(['--config', file, '--pid', '100', '--otlp-endpoint', 'http://127.0.0.1:9', '--otlp-protocol', 'grpc'], { env: {} });
  if (options === 'help') throw new Error('unreachable');
  // Exporters that take every request and never answer.
  let closed = 0;
  const silent = { export: () => {}, shutdown: async () => void closed++ };
  const agent = createAgent(
    { ...options, capture: { ...options.capture, rescanMs: 0 } },
    {
      logger: silentLogger,
      env: { OTEL_METRIC_EXPORT_INTERVAL: '60000' },
      openSession: opener(new FakeKernelSession()),
      procfs: new ProcFs(fp.proc),
      pidNamespace: { ino: PROC_PID_INIT_INO, dev: 4n, host: true },
      agentPid: 1,
      tickMs: 0,
      telemetry: {
        spanExporter: silent,
        logExporter: silent,
        metricExporter: { ...silent, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE },
      },
    },
  );
  await agent.start();
  agent.telemetry.record(Array.from({ length: 3000 }, () => traceRecord()));
  const before = Date.now();
  await agent.stop();
  const took = Date.now() - before;
  t.true(took >= 550 && took < 1100, `stop took ${took} ms`);
  t.is(closed, 3, 'every exporter was closed');
  const summary = agent.summary();
  t.deepEqual(summary.slice(-3), [
    'spans to http://127.0.0.1:9 (grpc): 0 exported, 3000 lost at shutdown (1976 still queued, 1024 in an export cut short)',
    'log records to http://127.0.0.1:9 (grpc): 0 exported, none lost at shutdown',
    'metrics to http://127.0.0.1:9 (grpc): final export did not finish within the shutdown bound: the last interval is lost',
  ]);
});
