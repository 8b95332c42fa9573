// The metric temporality preferences against the official OTLP exporter's
// selectors, for every instrument kind: ours are written from the
// specification to spare the agent that package's heap; they must agree.

import test from 'ava';
import { CumulativeTemporalitySelector, DeltaTemporalitySelector, LowMemoryTemporalitySelector } from '@opentelemetry/exporter-metrics-otlp-http';
import { AggregationTemporality, InstrumentType } from '@opentelemetry/sdk-metrics';
import { TEMPORALITY } from '../../src/otel/export';

const OFFICIAL = { cumulative: CumulativeTemporalitySelector, delta: DeltaTemporalitySelector, lowmemory: LowMemoryTemporalitySelector } as const;
const KINDS = Object.values(InstrumentType);

test('every instrument kind gets the official exporters\' temporality under each preference', (t) => {
  t.is(KINDS.length, 7);
  for (const pref of ['cumulative', 'delta', 'lowmemory'] as const) {
    for (const kind of KINDS) t.is(TEMPORALITY[pref](kind), OFFICIAL[pref](kind), `${pref} ${kind}`);
  }
});

test('delta leaves up-down counters cumulative; lowmemory makes only synchronous counters and histograms delta', (t) => {
  const { CUMULATIVE, DELTA } = AggregationTemporality;
  t.is(TEMPORALITY.delta(InstrumentType.COUNTER), DELTA);
  t.is(TEMPORALITY.delta(InstrumentType.OBSERVABLE_COUNTER), DELTA);
  t.is(TEMPORALITY.delta(InstrumentType.UP_DOWN_COUNTER), CUMULATIVE);
  t.is(TEMPORALITY.lowmemory(InstrumentType.HISTOGRAM), DELTA);
  t.is(TEMPORALITY.lowmemory(InstrumentType.OBSERVABLE_COUNTER), CUMULATIVE);
  t.is(TEMPORALITY.cumulative(InstrumentType.HISTOGRAM), CUMULATIVE);
});
