// The test.echo.Echo service definition (test/e2e/programs/grpc/echo.proto)
// for the gRPC benchmark target and its load generator.

import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** From dist/bench: the proto stays in the source tree. */
const PROTO = path.resolve(__dirname, '../..', 'test', 'e2e', 'programs', 'grpc', 'echo.proto');

export function echoService(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
  const echo = (grpc.loadPackageDefinition(definition)['test'] as grpc.GrpcObject)['echo'] as grpc.GrpcObject;
  return echo['Echo'] as grpc.ServiceClientConstructor;
}
