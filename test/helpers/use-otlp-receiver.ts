// One real OTLP receiver for a whole eBPF test file, and what the tests ask
// of it: the environment that points the agent (the CLI, a child process) at
// it, the agent's own counters, the spans of one process.
//
//   import anyTest from 'ava';
//   const otlp = useOtlpReceiver(anyTest);
//   const agent = await startAgent(['run', '--pid', pid], { env: otlp.env() });
//   t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0);

import type { TestFn } from 'ava';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver';

export interface OtlpTestReceiver {
  /** The receiver itself; throws when read before the file's `before` hooks ran. */
  readonly receiver: OtlpReceiver;
  /**
   * OTEL_* variables sending the agent's spans, metrics and logs to the
   * receiver over gRPC, with metrics exported every 60 s (so, in practice,
   * once: at shutdown), then `extra` over them.
   */
  env(extra?: Readonly<Record<string, string>>): Record<string, string>;
  /**
   * A counter summed over its series in the latest export that carried it;
   * with `match`, only the series whose ebpf_otel.protocol is that one (a
   * string) or that carry these attribute values. 0 when no export carried it.
   */
  counter(name: string, match?: string | Readonly<Record<string, string>>): number;
  /** The spans whose resource has process.pid `pid`, by start time. */
  spansOf(pid: number): ReceivedSpan[];
}

/**
 * Starts a receiver before the file's tests, empties it before each test and
 * closes it after them all (even when one failed).
 */
export function useOtlpReceiver<Context>(test: TestFn<Context>): OtlpTestReceiver {
  let started: OtlpReceiver | undefined;
  const get = (): OtlpReceiver => {
    if (!started) throw new Error('useOtlpReceiver: the receiver is read before the before() hook started it');
    return started;
  };
  test.before(async () => {
    started = await OtlpReceiver.start();
  });
  test.after.always(async () => {
    await started?.close();
  });
  test.beforeEach(() => get().reset());
  return {
    get receiver() {
      return get();
    },
    env: (extra = {}) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: get().grpcUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_METRIC_EXPORT_INTERVAL: '60000',
      ...extra,
    }),
    counter: (name, match) => {
      const want = typeof match === 'string' ? { 'ebpf_otel.protocol': match } : (match ?? {});
      return get()
        .latestPoints(name, (p) => Object.entries(want).every(([k, v]) => p.attributes[k] === v))
        .reduce((a, p) => a + (p.value ?? 0), 0);
    },
    spansOf: (pid) =>
      get()
        .spans.filter((s) => s.resource['process.pid'] === pid)
        .sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano)),
  };
}
