// How the trace-tree e2e tests count a link against the true tree: each
// span whose true parent is known is correct (under it), wrong (under any
// other span) or without parent.

import type { ReceivedSpan } from './otlp-receiver';

export interface Tally {
  total: number;
  correct: number;
  wrong: number;
  missing: number;
}

export const tally = (): Tally => ({ total: 0, correct: 0, wrong: 0, missing: 0 });

/** Counts `span` (nothing when it is absent) against its true parent, or any of its true parents (one per attempt). */
export function judge(t: Tally, span: ReceivedSpan | undefined, parent: ReceivedSpan | readonly ReceivedSpan[] | undefined): void {
  if (!span) return;
  t.total++;
  const parents = parent === undefined ? [] : Array.isArray(parent) ? parent : [parent as ReceivedSpan];
  if (span.parentSpanId === '') t.missing++;
  else if (parents.some((p) => p.spanId === span.parentSpanId && p.traceId === span.traceId)) t.correct++;
  else t.wrong++;
}

export const pct = (t: Tally): number => (t.total === 0 ? 0 : (100 * t.correct) / t.total);

export const line = (name: string, t: Tally): string => `${name}: ${t.correct}/${t.total} linked (${pct(t).toFixed(2)}%), ${t.wrong} wrong, ${t.missing} without parent`;
