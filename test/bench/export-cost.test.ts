// Smoke test of the export benchmark: real encoded requests through the gRPC
// transport to the sink process, every one accepted. Not a speed test.

import test from 'ava';
import { runExportCost } from '../../bench/export-cost';

for (const gzip of [false, true]) {
  test.serial(`bench export cost${gzip ? ' (gzip)' : ''}: every request is accepted by the sink, one figure per round`, async (t) => {
    const r = await runExportCost({ seconds: 0.2, rounds: 2, spans: 16, gzip });
    t.is(r.perSpanUs.length, 2);
    t.is(r.requestsPerSecond.length, 2);
    t.true(r.requests >= 2, `${r.requests} requests`);
    t.true(r.perSpanUs.every((x) => x > 0));
    // 16 spans of ~500 B, under one resource and scope.
    t.true(r.requestBytes > 16 * 400 && r.requestBytes < 16 * 1000, `${r.requestBytes} B`);
  });
}
