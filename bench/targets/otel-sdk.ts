// Preloaded into the Node target (`node --require dist/bench/targets/otel-sdk.js`)
// for the in-process arm of bench/overhead.ts: the OpenTelemetry Node SDK with
// the HTTP instrumentation only, exporting spans over OTLP as the standard
// OTEL_* variables say (the benchmark sets gRPC to its receiver); metrics and
// logs off. SIGTERM/SIGINT shut the SDK down (flushing spans), then exit.

import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

process.env['OTEL_METRICS_EXPORTER'] ??= 'none';
process.env['OTEL_LOGS_EXPORTER'] ??= 'none';
process.env['OTEL_TRACES_EXPORTER'] ??= 'otlp';

const sdk = new NodeSDK({ instrumentations: [new HttpInstrumentation()] });
sdk.start();

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  sdk.shutdown().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`otel-sdk: shutdown failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
