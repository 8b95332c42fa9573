// An OTLP/gRPC endpoint that takes every export and decodes nothing, run as its
// own process: what the export stage of bench/pipeline.ts hands its requests
// to, so that only the sender's cost lands in the measured process.
// Prints one JSON line {"port": N} once it listens.
//
//   node dist/bench/targets/otlp-sink.js

import * as grpc from '@grpc/grpc-js';

const SERVICES = {
  traces: 'opentelemetry.proto.collector.trace.v1.TraceService',
  metrics: 'opentelemetry.proto.collector.metrics.v1.MetricsService',
  logs: 'opentelemetry.proto.collector.logs.v1.LogsService',
};

const server = new grpc.Server();
for (const service of Object.values(SERVICES)) {
  // An empty Export*ServiceResponse is zero bytes.
  const definition: grpc.ServiceDefinition = {
    Export: {
      path: `/${service}/Export`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b.length,
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: () => ({}),
    },
  };
  server.addService(definition, { Export: (_call: unknown, done: grpc.sendUnaryData<unknown>) => done(null, {}) });
}
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
