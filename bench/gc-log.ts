// A preload for the agent under a benchmark: one line per second of V8 GC
// counts and pause totals by kind (PerformanceObserver 'gc') appended to
// $GC_LOG_DIR/gc-PID.log. V8's --trace-gc is not allowed in NODE_OPTIONS;
// --require is:
//   GC_LOG_DIR=/tmp/gc node dist/bench/agent-cost.js --agent-node-options="--require $PWD/dist/bench/gc-log.js"
// Each line: epoch ms, then {"minor":{"n":4,"ms":12.8},"major":...} for that second.

import * as fs from 'node:fs';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const dir = process.env.GC_LOG_DIR;
if (dir) {
  const file = `${dir}/gc-${process.pid}.log`;
  let second: Record<string, { n: number; ms: number }> = {};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
      const kind = KINDS[e.detail?.kind ?? -1] ?? 'other';
      const a = (second[kind] ??= { n: 0, ms: 0 });
      a.n++;
      a.ms += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    fs.appendFileSync(file, `${Date.now()} ${JSON.stringify(second)}\n`);
    second = {};
  }, 1000).unref();
}
