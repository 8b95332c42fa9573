// The gRPC target of the overhead benchmark: a @grpc/grpc-js server (h2c) of
// test.echo.Echo (test/e2e/programs/grpc/echo.proto) whose Unary answers a
// request with text "small" by a ~100 B message and one with text "large" by a
// 16 KiB blob, the gRPC counterparts of the HTTP targets' /small and /large;
// anything else is echoed. Prints one JSON line {"port", "pid"} once it
// listens; exits on SIGTERM/SIGINT.
//
//   node dist/bench/targets/grpc-server.js [--port N]

import * as grpc from '@grpc/grpc-js';
import { echoService } from '../grpc-echo';

const SMALL = { text: JSON.stringify({ ok: true, service: 'bench', items: [1, 2, 3], note: 'a small response of about 100 bytes' }) };
const LARGE = { blob: Buffer.alloc(16 * 1024, 'x') };

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 0;

const server = new grpc.Server();
server.addService(echoService().service, {
  Unary: (call: grpc.ServerUnaryCall<{ text: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const text = call.request.text;
    callback(null, text === 'small' ? SMALL : text === 'large' ? LARGE : call.request);
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port: bound, pid: process.pid }) + '\n');
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
