// The gRPC test programs work on their own (no eBPF): each client scenario
// gets exactly the statuses and counts the eBPF tests will expect as spans,
// over one connection.

import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';
import { GRPC_NODE, LONG_DETAILS, startGrpcClient, startGrpcServer, type GrpcScenario } from '../helpers/grpc';
import { testCertificates, type TestCertificates } from '../helpers/tls';

async function run(port: number, scenario: GrpcScenario, certs?: TestCertificates): Promise<Record<string, unknown>> {
  const client = await startGrpcClient(port, scenario, certs);
  if (client.hello['pid'] !== client.pid) throw new Error(`client hello ${JSON.stringify(client.hello)}`);
  client.go();
  return client.result();
}

const unaryOk = (text: string) => ({ call: 'unary', code: 0, text, bytes: 0, intact: true });

test('the gRPC client scenarios get the exact statuses and counts, each on one connection', async (t) => {
  const server = await startGrpcServer();
  try {
    t.is(server.hello['pid'], server.pid);
    const port = server.hello['port'] as number;
    t.true(Number.isInteger(port) && port > 0);

    t.deepEqual(await run(port, ['unary', 3]), { results: [unaryOk('u0'), unaryOk('u1'), unaryOk('u2')], connections: 1 });

    t.deepEqual(await run(port, ['mix']), {
      results: [
        unaryOk('ok'),
        { call: 'unary', code: 5, details: 'failed on purpose' }, // NOT_FOUND
        { call: 'unary', code: 4, details: 'Deadline exceeded' }, // DEADLINE_EXCEEDED
        { call: 'server_stream', code: 0, count: 3, texts: ['s-0', 's-1', 's-2'] },
        { call: 'client_stream', code: 0, sent: 4, count: 4 },
        { call: 'bidi', code: 0, count: 2, texts: ['b0', 'b1'] },
      ],
      // The deadline-exceeded call is cancelled by the client: no trailers, but the
      // other five answers all name the same client address.
      connections: 1,
    });

    // The server holds every call until all 100 are in flight, so they are
    // concurrent streams of one connection or they would time out.
    t.deepEqual(await run(port, ['concurrent', 100]), {
      results: Array.from({ length: 100 }, (_, i) => unaryOk(`c${i}`)),
      connections: 1,
    });

    t.deepEqual(await run(port, ['errors']), {
      results: [
        { call: 'unary', code: 3, details: 'failed on purpose' }, // INVALID_ARGUMENT
        { call: 'unary', code: 5, details: 'failed on purpose' }, // NOT_FOUND
        { call: 'unary', code: 13, details: LONG_DETAILS }, // INTERNAL
        { call: 'missing', code: 12, details: 'The server does not implement the method /test.echo.Echo/Missing' }, // UNIMPLEMENTED
        { call: 'unary', code: 4, details: 'Deadline exceeded' }, // DEADLINE_EXCEEDED
      ],
      connections: 1,
    });

    t.deepEqual(await run(port, ['big']), {
      results: [{ call: 'unary', code: 0, text: 'big', bytes: 4 * 1024 * 1024, intact: true }],
      connections: 1,
    });
  } finally {
    server.child.kill();
  }
});

test('a unary call waiting for partners that never come ends DEADLINE_EXCEEDED and leaves the barrier', async (t) => {
  const server = await startGrpcServer();
  try {
    const port = server.hello['port'] as number;
    const definition = protoLoader.loadSync(path.join(path.dirname(GRPC_NODE), 'grpc', 'echo.proto'), { keepCase: true, defaults: true });
    const Echo = ((grpc.loadPackageDefinition(definition)['test'] as grpc.GrpcObject)['echo'] as grpc.GrpcObject)['Echo'] as grpc.ServiceClientConstructor;
    const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((resolve) =>
        client['Unary']!({ text: 'alone', count: 2 }, { deadline: Date.now() + 300 }, (err: grpc.ServiceError | null) => resolve(err ? err.code : 0)),
      );
      t.is(code, grpc.status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
    // Had the cancelled call stayed in the barrier, the first call of this pair
    // would be released alone; both are still answered, together.
    t.deepEqual(await run(port, ['concurrent', 2]), { results: [unaryOk('c0'), unaryOk('c1')], connections: 1 });
  } finally {
    server.child.kill();
  }
});

test('preattach: calls before the hello, more after go, all on one connection; the same scenarios over TLS', async (t) => {
  for (const certs of [undefined, await testCertificates()]) {
    const label = certs ? 'tls' : 'cleartext';
    const server = await startGrpcServer(certs);
    try {
      const port = server.hello['port'] as number;
      const client = await startGrpcClient(port, ['preattach', 2], certs);
      t.deepEqual(client.hello, { pid: client.pid, before: [0, 1].map((i) => ({ call: 'server_stream', code: 0, count: 1, texts: [`early${i}-0`] })) }, label);
      client.go();
      t.deepEqual(await client.result(), { results: [unaryOk('late0'), unaryOk('late1')], connections: 1 }, label);
      if (certs) t.deepEqual(await run(port, ['unary', 2], certs), { results: [unaryOk('u0'), unaryOk('u1')], connections: 1 }, label);
    } finally {
      server.child.kill();
    }
  }
});
