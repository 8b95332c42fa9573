// Runs the ava suite and ends with one plain summary line
// ("N passed, N failed, N skipped") that CI reads; the exit code is ava's.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const ava = path.join(__dirname, '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], {
  cwd: path.join(__dirname, '..'),
  stdio: ['ignore', 'pipe', 'inherit'],
  env: process.env,
});
let passed = 0;
let failed = 0;
let skipped = 0;
let rest = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const lines = (rest + chunk.toString()).split('\n');
  rest = lines.pop();
  for (const line of lines) count(line);
});
function count(line) {
  if (/^not ok \d+/.test(line)) {
    if (/# TODO/.test(line)) skipped++;
    else failed++;
  } else if (/^ok \d+/.test(line)) {
    if (/# SKIP/.test(line)) skipped++;
    else passed++;
  }
}
child.on('close', (code) => {
  if (rest) count(rest);
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exit(code === 0 && failed === 0 ? 0 : code || 1);
});
