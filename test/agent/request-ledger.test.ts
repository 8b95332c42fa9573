// The exit summary's request line adds up: every request start is a record
// or given up for a reason (issue 12, 7c). Here a connection evicted from a
// full connection table takes its pending request with it, counted.

import test from 'ava';
import { AgentPipeline, type TelemetrySink } from '../../src/agent/pipeline';
import { requestLedger } from '../../src/agent/features/socket-capture';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { TraceGraph } from '../../src/correlate/trace-graph';
import { silentLogger } from '../../src/util/log';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord, dataRecord } from '../helpers/records';

const pos: Record<string, number> = {};
function data(connId: number, dir: 1 | 2, text: string, t: number) {
  const key = `${connId}:${dir}`;
  const p = pos[key] ?? 0;
  pos[key] = p + text.length;
  return dataRecord({ connId, dir, pos: p, payload: Buffer.from(text), tsEnter: t, tsExit: t + 1, tid: 5, tgid: 100 });
}

test('a request pending on an evicted connection is given up as "connection evicted"; the starts add up', (t) => {
  let records = 0;
  const sink: TelemetrySink = { record: (r) => void (records += r.length), shutdown: async () => {} };
  const tracker = new ConnectionTracker({ protocols: [lineProtocol], maxConnections: 2 }, silentLogger);
  const graph = new TraceGraph({ decide: () => true });
  const pipeline = new AgentPipeline(tracker, graph, sink);
  const events: CaptureEvent[] = [];
  decodeBatch(
    batch([
      connRecord({ type: 'open', connId: 1, role: 2, reason: 2, ts: 10 }),
      connRecord({ type: 'open', connId: 2, role: 2, reason: 2, ts: 20 }),
      data(1, 2, 'REQ a\n', 100), // pending when connection 1 is evicted
      data(2, 2, 'REQ b\n', 110),
      data(2, 1, 'RES ok\n', 120), // recorded
      connRecord({ type: 'open', connId: 3, role: 2, reason: 2, ts: 130 }), // the table holds 2: connection 1 goes
      data(3, 2, 'REQ c\n', 140),
      data(3, 1, 'GONE\n', 150), // abandoned by the parser
      data(3, 2, 'REQ d\n', 160), // still pending
    ]),
    (e) => events.push(e),
    newDecodeStats(),
  );
  for (const e of events) pipeline.onEvent(e);
  pipeline.flush();
  t.is(records, 1);
  t.is(tracker.stats().evicted, 1);
  t.is(
    requestLedger(pipeline.stats()),
    'requests: started 4 = recorded 1 + given up 3 (abandoned by the parser 1, expired without a record 0, connection evicted 1, process exited 0, ' +
      "over the trace graph's bound 0, still pending 1); records 1 = 1 started + 0 whose start was not seen",
  );
  pipeline.end(1000); // d ends as a record without a response
  t.is(records, 2);
  t.is(
    requestLedger(pipeline.stats()),
    'requests: started 4 = recorded 2 + given up 2 (abandoned by the parser 1, expired without a record 0, connection evicted 1, process exited 0, ' +
      "over the trace graph's bound 0, still pending 0); records 2 = 2 started + 0 whose start was not seen",
  );
});
