// eBPF: the BPF object loads (and attaches) while the process takes a stream
// of signals. The verifier gives up with EAGAIN whenever a signal is pending for the
// loading thread (`signal_pending(current)` in its main loop), and libbpf's
// five retries do not outlast a steady stream: `node --cpu-prof` (SIGPROF
// every millisecond) could not load the agent at all. The addon loads with
// signals blocked on the loading thread (native/signal_block.h).
//
// The loader is a child of its own, so its main thread (the thread group
// leader, which the kernel prefers for a process-directed signal) is the one
// that loads; a second child sends it SIGUSR2 as fast as it can, and the
// loader's handler counts what arrived.

import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { ebpfTest } from '../helpers/ebpf';
import { firstLine, jsSource, sessionOptions } from './support';

// dist/test/native/ -> dist/src/capture/native-binding.js
const BINDING_JS = path.resolve(__dirname, '../../src/capture/native-binding.js');

const LOADS = 3;

function loaderScript(): string {
  const { onBatch: _onBatch, ...options } = sessionOptions();
  return `
    const { loadNativeBinding } = require(${JSON.stringify(BINDING_JS)});
    const binding = loadNativeBinding();
    let signals = 0;
    process.on('SIGUSR2', () => { signals++; });
    const options = ${jsSource(options)};
    options.config.agentTgid = process.pid;
    // Every group: the most programs, the longest verification.
    options.groups = { sockets: true, syscalls: true, tcp: true, tls: false };
    const turn = () => new Promise((resolve) => setTimeout(resolve, 20));
    const report = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
    process.stdin.once('data', async () => {
      // Wait until the stream is flowing, so the loads below run under it.
      while (signals < 100) await turn();
      const before = signals;
      const results = [];
      for (let i = 0; i < ${LOADS}; i++) {
        try {
          const session = new binding.SocketTraceSession({ ...options, onBatch: () => {} });
          try {
            session.attachAll();
          } finally {
            session.close();
          }
          results.push('ok');
        } catch (e) {
          results.push(String(e.code) + ': ' + e.message.split('\\n')[0]);
        }
        await turn();
      }
      report({ results, signalsDuringLoads: signals - before });
      process.exit(0);
    });
    report({ ready: true });`;
}

ebpfTest('the BPF object loads and attaches while the process takes a stream of signals', async (t) => {
  const loader = spawn(process.execPath, ['-e', loaderScript()], { stdio: ['pipe', 'pipe', 'inherit'] });
  let signaller: ReturnType<typeof spawn> | undefined;
  try {
    t.deepEqual(JSON.parse(await firstLine(loader, 20000)), { ready: true });
    // Exits when the loader is gone (kill throws ESRCH).
    const signallerScript = `const pid = ${loader.pid}; for (;;) process.kill(pid, 'SIGUSR2');`;
    signaller = spawn(process.execPath, ['-e', signallerScript], { stdio: 'ignore' });
    loader.stdin!.write('go\n');
    const { results, signalsDuringLoads } = JSON.parse(await firstLine(loader, 120000)) as { results: string[]; signalsDuringLoads: number };
    t.true(signalsDuringLoads > 0, 'signals kept arriving while loading');
    t.deepEqual(results, Array<string>(LOADS).fill('ok'));
  } finally {
    signaller?.kill('SIGKILL');
    loader.kill('SIGKILL');
  }
});
