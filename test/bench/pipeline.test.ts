// Smoke test of the pipeline benchmark: each scenario replays through the real
// agent path for about a second and yields exactly the records it was built
// with (one per request), every one serialized as an OTLP span. Not a speed test.

import test from 'ava';
import { SCENARIOS, runScenario } from '../../bench/pipeline';

for (const [name, build] of Object.entries(SCENARIOS)) {
  test.serial(`bench scenario ${name}: every request becomes one record and one serialized span`, async (t) => {
    const stream = build();
    t.true(stream.batches.length > 1, 'several native batches');
    t.true(stream.batches.every((b) => b.length <= 256 * 1024), 'batches of at most 256 KiB');
    const r = await runScenario(stream, 1);
    t.true(r.replays >= 1);
    t.is(r.expectedRecords, stream.records * r.replays);
    t.is(r.records, r.expectedRecords);
    t.is(r.spansSerialized, r.expectedRecords);
    t.is(r.spansDropped, 0);
    t.true(r.spanBytes > 0);
    t.true(r.metricRequests > 0, 'metrics were serialized at shutdown');
  });
}
