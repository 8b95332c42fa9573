// A Telemetry wired to a real OTLP receiver and a fake /proc.

import { fixedOffsetClock } from '../../src/otel/spans';
import type { ExecutionContext } from 'ava';
import { ProcFs } from '../../src/util/procfs';
import { loadOtelConfig, type Env, type OtelOptions } from '../../src/otel/config';
import { createTelemetry, type Telemetry, type TelemetryDeps } from '../../src/otel/telemetry';
import { FakeProc } from '../helpers/fake-proc';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { memoryLogger } from './fixtures';

export const OFFSET = 1_700_000_000_000_000_000n;
export const toWallNs = (mono: number) => BigInt(mono) + OFFSET;
/** CLOCK_MONOTONIC "now" of the harness's telemetry: the observed time of its log records. */
export const NOW_MONO_NS = 200_000_000_000;

export interface Harness {
  receiver: OtlpReceiver;
  telemetry: Telemetry;
  logger: ReturnType<typeof memoryLogger>;
  fp: FakeProc;
  lines: string[];
}

export function addProcess(fp: FakeProc, pid: number, script: string, start = 1): void {
  fp.add({ pid, exe: '/usr/bin/python3.12', cmdline: ['python3', `${script}.py`] });
  fp.writeFile(`proc/${pid}/stat`, `${pid} (python3) ${['S', ...Array<string>(18).fill('0'), String(start), '0'].join(' ')}\n`);
}

/** `endpoint` picks the receiver's gRPC or HTTP port; options add to it. */
export async function harness(
  t: ExecutionContext,
  transport: 'grpc' | 'http' | 'none',
  options: OtelOptions = {},
  env: Env = {},
  receiver?: OtlpReceiver,
  /** Replaces the harness's (exporters, clocks). */
  deps: Partial<TelemetryDeps> = {},
): Promise<Harness> {
  const r = receiver ?? (await OtlpReceiver.start());
  const fp = new FakeProc();
  addProcess(fp, 4242, 'shop');
  addProcess(fp, 4343, 'billing');
  const logger = memoryLogger();
  const lines: string[] = [];
  const endpoint: OtelOptions =
    transport === 'grpc' ? { endpoint: r.grpcUrl, protocol: 'grpc' } : transport === 'http' ? { endpoint: r.httpUrl, protocol: 'http/protobuf' } : {};
  const config = loadOtelConfig(env, { retry: { initialBackoffMillis: 50, maxBackoffMillis: 200 }, ...endpoint, ...options });
  const telemetry = createTelemetry(config, {
    clock: fixedOffsetClock(OFFSET),
    logger,
    procfs: new ProcFs(fp.proc),
    agentEnv: {},
    hostName: 'test-host',
    version: '0.1.0',
    write: (l) => lines.push(l),
    monotonicNs: () => NOW_MONO_NS,
    ...deps,
  });
  t.teardown(async () => {
    await telemetry.shutdown(1000);
    if (!receiver) await r.close();
    fp.cleanup();
  });
  return { receiver: r, telemetry, logger, fp, lines };
}
