// Smoke test of the process-churn benchmark (bench/process-churn.ts): a
// short run through the real agent with --json; every process's request
// became a record, and the resources cache holds the latest exits only. Not a
// memory assertion: the benchmark prints figures.

import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import test from 'ava';

test('bench process-churn: one record per process, exited resources bounded', (t) => {
  const script = path.join(__dirname, '..', '..', 'bench', 'process-churn.js');
  const out = execFileSync(process.execPath, ['--expose-gc', script, '--processes', '1200', '--step', '600', '--json'], { encoding: 'utf8', timeout: 60_000 });
  const { points } = JSON.parse(out) as { points: { processes: number; records: number; resources: number }[] };
  t.deepEqual(points.map((p) => [p.processes, p.records, p.resources]), [
    [600, 600, 64],
    [1000, 1000, 64],
    [1200, 1200, 64],
  ]);
});
