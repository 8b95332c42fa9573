// `ebpf-otel demo`: starts the bundled workload (a Node frontend calling a
// threaded Python backend that reads PostgreSQL, driven by a small load loop)
// and runs the agent on the frontend and the backend: spans on the console, or
// to OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
// --capture shows the raw captured events instead.

import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../util/log';
import { durationSeconds, parse } from '../config/flags';
import { runCapture } from './capture-command';
import { startDemoDatabase, type DemoDatabase } from './demo-database';
import { parseRunArgs, runAgent } from './run-command';

const DEMO_DIR = path.resolve(__dirname, '../../../demo');

export async function demoCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parse(argv, { capture: { type: 'boolean' }, json: { type: 'boolean' }, duration: { type: 'string' } });
  const duration = values.duration !== undefined ? durationSeconds('--duration', values.duration) : undefined;
  const [frontendPort, backendPort, databasePort] = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  process.on('exit', stopAll);
  let database: DemoDatabase | undefined;
  try {
    database = await startDemoDatabase(databasePort, (reason) => logger.warn(`demo: ${reason}`));
    const backend = start(children, '/usr/bin/python3', [path.join(DEMO_DIR, 'backend.py')], {
      PORT: String(backendPort),
      OTEL_SERVICE_NAME: 'demo-backend',
      ...(database !== undefined ? { DEMO_PG_DSN: database.dsn } : {}),
    });
    const frontend = start(children, process.execPath, [path.join(DEMO_DIR, 'frontend.js')], {
      PORT: String(frontendPort),
      BACKEND_URL: `http://127.0.0.1:${backendPort}`,
      OTEL_SERVICE_NAME: 'demo-frontend',
    });
    await Promise.all([listening(backend, 'backend'), listening(frontend, 'frontend')]);
    logger.info(
      `demo: frontend pid ${frontend.pid} on :${frontendPort}, backend pid ${backend.pid} on :${backendPort}` +
        (database !== undefined ? `, PostgreSQL on :${databasePort}` : ''),
    );
    const selectors = [{ kind: 'pid', pid: frontend.pid! }, { kind: 'pid', pid: backend.pid! }] as const;
    const startLoad = () => {
      start(children, process.execPath, [path.join(DEMO_DIR, 'load.js')], {
        TARGET_URL: `http://127.0.0.1:${frontendPort}`,
        RATE: '2',
      });
    };
    if (values.capture) {
      // Raw socket events instead of spans.
      return await runCapture({ selectors }, { json: values.json ?? false, duration, onReady: startLoad }, logger);
    }
    // The agent's defaults are the `run` command's: parse them the same way.
    const pids = selectors.flatMap((sel) => ['--pid', String(sel.pid)]);
    const runOptions = parseRunArgs([...pids, ...(values.duration !== undefined ? ['--duration', values.duration] : [])]);
    if (runOptions === 'help') throw new Error('unreachable: no --help given');
    return await runAgent(runOptions, logger, startLoad);
  } finally {
    stopAll();
    await database?.stop();
  }
}

function start(children: ChildProcess[], cmd: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

function listening(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo ${name} did not start within 10 s`)), 10_000);
    child.once('exit', (code) => reject(new Error(`demo ${name} exited with code ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
