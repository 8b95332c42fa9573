// The traced servers of the benchmarks, started fresh for each run: the Node
// `http` target (bench/targets/http-server.ts, optionally with the
// OpenTelemetry Node SDK preloaded, or over `https` with a given certificate),
// the Go HTTPS test program (crypto/tls) and nginx from Debian, run by us with a
// generated config in a temp prefix, one worker. All answer /small (~100 B)
// and /large (16 KiB) with a Content-Length; the gRPC target
// (bench/targets/grpc-server.ts, grpc-js) answers the same sizes to unary calls. `cpus` starts a server through
// `taskset -c` (it execs: same pid), so every thread it ever makes, and
// nginx's forked worker, stays on those CPUs.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { childrenOf, sleep, stopChild } from './processes';

export interface Server {
  readonly port: number;
  /** Every process that serves requests (nginx: master and worker). */
  readonly pids: number[];
  stop(): Promise<void>;
}

const ROOT = path.resolve(__dirname, '../..');
const SERVER_JS = path.join(ROOT, 'dist', 'bench', 'targets', 'http-server.js');
const OTEL_SDK_JS = path.join(ROOT, 'dist', 'bench', 'targets', 'otel-sdk.js');

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** `cmd args` as run on `cpus` (a taskset list such as "1"), or as is. */
function onCpus(cpus: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]];
}

/** PEM files of a server certificate and its key. */
export interface ServerCertificate {
  readonly cert: string;
  readonly key: string;
}

/**
 * The Node target; with `sdkEndpoint`, the OpenTelemetry Node SDK exports its
 * spans there over gRPC; with `tls`, it serves https.
 */
export async function startNodeServer(sdkEndpoint?: string, o: { cpus?: string; tls?: ServerCertificate } = {}): Promise<Server> {
  const args = sdkEndpoint ? ['--require', OTEL_SDK_JS, SERVER_JS] : [SERVER_JS];
  if (o.tls) args.push('--cert', o.tls.cert, '--key', o.tls.key);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  if (sdkEndpoint) {
    env['OTEL_EXPORTER_OTLP_ENDPOINT'] = sdkEndpoint;
    env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'grpc';
    env['OTEL_SERVICE_NAME'] = 'bench-node-sdk';
  }
  const child = spawn(...onCpus(o.cpus, process.execPath, args), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`node target exited ${code} before listening: ${stderr}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return { port, pids: [child.pid!], stop: () => stopChild(child, 'SIGTERM') };
}

/**
 * The Go HTTPS test program (test/e2e/programs/go/https, crypto/tls, built
 * by the caller) as a server: the same /small and /large as the Node target.
 */
export async function startGoHttpsServer(binary: string, tls: ServerCertificate, o: { cpus?: string } = {}): Promise<Server> {
  const child = spawn(...onCpus(o.cpus, binary, ['server', tls.cert, tls.key]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`go https target exited ${code} before listening: ${stderr}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return { port, pids: [child.pid!], stop: () => stopChild(child, 'SIGTERM') };
}

const GRPC_SERVER_JS = path.join(ROOT, 'dist', 'bench', 'targets', 'grpc-server.js');

/** The gRPC target (bench/targets/grpc-server.ts): grpc-js, h2c, unary "small" and "large". */
export async function startGrpcServer(o: { cpus?: string } = {}): Promise<Server> {
  const child = spawn(...onCpus(o.cpus, process.execPath, [GRPC_SERVER_JS]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`grpc target exited ${code} before listening: ${stderr}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return { port, pids: [child.pid!], stop: () => stopChild(child, 'SIGTERM') };
}

const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, service: 'bench', items: [1, 2, 3], note: 'a small response of about 100 bytes' }));

export interface NginxOptions {
  /** events.worker_connections (default 4096); the worker's open-file limit follows it. */
  readonly workerConnections?: number;
  /** keepalive_timeout, seconds (default 65). */
  readonly keepaliveTimeoutSeconds?: number;
  /** CPUs for master and worker (taskset list); default: any. */
  readonly cpus?: string;
}

export async function startNginx(o: NginxOptions = {}): Promise<Server> {
  const workerConnections = o.workerConnections ?? 4096;
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-bench-nginx-'));
  // Workers run as nobody: the prefix must be readable by them.
  fs.chmodSync(prefix, 0o755);
  fs.mkdirSync(path.join(prefix, 'html'), { mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'html', 'small'), SMALL_BODY, { mode: 0o644 });
  fs.writeFileSync(path.join(prefix, 'html', 'large'), Buffer.alloc(16 * 1024, 'x'), { mode: 0o644 });
  const port = await freePort();
  const tmp = (n: string) => `${n}_temp_path ${path.join(prefix, n)};`;
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${workerConnections + 1024};
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  ${tmp('client_body')} ${tmp('proxy')} ${tmp('fastcgi')} ${tmp('uwsgi')} ${tmp('scgi')}
  default_type application/octet-stream;
  keepalive_requests 1000000;
  keepalive_timeout ${o.keepaliveTimeoutSeconds ?? 65};
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${path.join(prefix, 'html')};
    location / { }
  }
}
`,
  );
  const child = spawn(...onCpus(o.cpus, 'nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log')]), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`nginx exited ${code}: ${stderr}`))));
  exited.catch(() => {});
  await Promise.race([waitForPort(port, 10_000), exited]);
  let workers: number[] = [];
  for (let i = 0; i < 100 && workers.length === 0; i++) {
    workers = childrenOf(child.pid!);
    if (workers.length === 0) await sleep(20);
  }
  return {
    port,
    pids: [child.pid!, ...workers],
    async stop() {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}
