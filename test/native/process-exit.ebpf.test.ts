// eBPF: processes holding a started session end cleanly. SIGTERM leaves no
// links or programs behind, whether the handler calls close() or just exits
// (the env cleanup hook then stops the poll thread before Node tears down);
// a throwing onBatch becomes an 'uncaughtException'.

import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { ebpfTest } from '../helpers/ebpf';
import { firstLine, jsSource, linkedProgramNames, loadedPrograms, sessionOptions } from './support';

// dist/test/native/ -> dist/src/capture/native-binding.js
const BINDING_JS = path.resolve(__dirname, '../../src/capture/native-binding.js');

const PRELUDE = `const { loadNativeBinding } = require(${JSON.stringify(BINDING_JS)});`;

function holderScript(onTerm: 'close' | 'exit'): string {
  const { onBatch: _onBatch, ...options } = sessionOptions();
  return `
    ${PRELUDE}
    const binding = loadNativeBinding();
    let batches = 0;
    const options = ${jsSource(options)};
    options.config.agentTgid = process.pid;
    options.config.selectAll = true; // keep batches flowing while it exits
    const session = new binding.SocketTraceSession({ ...options, onBatch: () => { batches++; } });
    const attached = session.attachAll();
    session.start();
    process.on('SIGTERM', () => {
      ${onTerm === 'close' ? 'session.close();' : ''}
      process.exit(0);
    });
    const ids = session.programs().filter((p) => attached.includes(p.name)).map((p) => p.id);
    console.log(JSON.stringify({ ids, attached }));`;
}

for (const onTerm of ['close', 'exit'] as const) {
  ebpfTest(`SIGTERM to a process holding a session (handler: ${onTerm}) leaves no links`, async (t) => {
    const child = spawn(process.execPath, ['-e', holderScript(onTerm)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    );
    try {
      const { ids, attached } = JSON.parse(await firstLine(child, 20000)) as { ids: number[]; attached: string[] };
      t.true(ids.length > 0);
      t.deepEqual(linkedProgramNames(ids), [...attached].sort(), 'attached while running');
      await new Promise((resolve) => setTimeout(resolve, 200)); // let batches flow
      child.kill('SIGTERM');
      t.deepEqual(await exited, [0, null], 'clean exit, no crash');
      t.deepEqual(linkedProgramNames(ids), [], 'links left behind');
      t.deepEqual(loadedPrograms(ids), [], 'programs left loaded');
    } finally {
      child.kill('SIGKILL');
    }
  });
}

ebpfTest('an exception thrown by onBatch becomes an uncaughtException', async (t) => {
  const { onBatch: _onBatch, ...options } = sessionOptions();
  const script = `
    ${PRELUDE}
    const options = ${jsSource(options)};
    options.config.agentTgid = process.pid;
    options.config.selectAll = true;
    const session = new (loadNativeBinding().SocketTraceSession)({
      ...options,
      onBatch: () => { throw new Error('thrown by onBatch'); },
    });
    process.on('uncaughtException', (e) => {
      session.close();
      console.log(JSON.stringify({ message: e.message }));
      process.exit(0);
    });
    session.attachAll();
    session.start();
    setInterval(() => require('node:fs').readFileSync('/proc/self/stat'), 10);
    require('node:net').connect(9, '127.0.0.1').on('error', () => {});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    t.deepEqual(JSON.parse(await firstLine(child, 20000)), { message: 'thrown by onBatch' });
  } finally {
    child.kill('SIGKILL');
  }
});
