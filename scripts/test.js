// Runs the ava suite in two phases and ends with one plain summary line
// ("N passed, N failed, N skipped") that CI reads; the exit code is non-zero
// when either phase fails.
//
// Phase 1: the tests that need no kernel, files in parallel.
// Phase 2: the eBPF tests (`*.ebpf.test.js`), one file at a time. They assert
// exact spans and counts from real programs; run side by side (a benchmark
// smoke run saturating both CPUs next to an end-to-end test), the agents of
// different files starve each other and turn counted drops into failures
// that say nothing about the code.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const EBPF = 'dist/test/**/*.ebpf.test.js';
const extra = process.argv.slice(2);

let passed = 0;
let failed = 0;
let skipped = 0;

function count(line) {
  if (/^not ok \d+/.test(line)) {
    if (/# TODO/.test(line)) skipped++;
    else failed++;
  } else if (/^ok \d+/.test(line)) {
    if (/# SKIP/.test(line)) skipped++;
    else passed++;
  }
}

function phase(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ava, '--tap', ...args, ...extra], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: process.env,
    });
    let rest = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop();
      for (const line of lines) count(line);
    });
    child.on('close', (code) => {
      if (rest) count(rest);
      resolve(code ?? 1);
    });
  });
}

(async () => {
  // With files named on the command line, run just those, as ava would.
  const named = extra.some((a) => !a.startsWith('-'));
  const codes = named
    ? [await phase([])]
    : [await phase(['dist/test/**/*.test.js', `!${EBPF}`]), await phase(['--concurrency', '1', EBPF])];
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exit(codes.every((c) => c === 0) && failed === 0 ? 0 : 1);
})();
