// eBPF: 100 concurrent gRPC calls on one channel (issue 15). grpc-js writes
// one iovec per HTTP/2 frame, so the calls leave in one writev of ~200
// iovecs and the answers in one of ~300: every stream is a span only when the
// kernel gathers every iovec (bpf/data.bpf.h).

import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent } from '../helpers/agent';
import { startGrpcClient, startGrpcServer } from '../helpers/grpc';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const otlp = useOtlpReceiver(anyTest);
const SERVER_KIND = 2;

ebpfTest.serial('100 concurrent unary calls on one channel: 100 server spans, all OK', async (t) => {
  const server = await startGrpcServer();
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
    const client = await startGrpcClient(server.hello.port as number, ['concurrent', 100]);
    client.go();
    const result = await client.result();
    t.is((result.results as unknown[]).length, 100);
    t.is(result.connections, 1);
    await sleep(500);
    const { code } = await agent.stop();
    t.is(code, 0);
    const spans = otlp.spansOf(server.pid).filter((s) => s.kind === SERVER_KIND);
    t.is(spans.length, 100);
    t.deepEqual([...new Set(spans.map((s) => `${s.name} ${String(s.attributes['rpc.response.status_code'])}`))], ['test.echo.Echo/Unary OK']);
  } finally {
    server.child.kill();
  }
});
