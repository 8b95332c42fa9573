// A throwaway MariaDB server for tests and fixture recordings: data in a
// mkdtemp folder, loopback only, a random port, a database `shop` and a user
// with a password (the tests need real authentication, never
// --skip-grant-tables). stop() kills it and removes the folder.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

export interface MariaDbServer {
  readonly port: number;
  readonly socket: string;
  readonly pid: number;
  /** The test user (all privileges on `database`). */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Runs SQL as root over the Unix socket (setup only: not over TCP, so captures never see it). */
  sql(text: string): string;
  stop(): Promise<void>;
}

/** Whether mariadbd and mariadb-install-db are installed (scripts/setup.sh). */
export function mariadbAvailable(): boolean {
  return ['/usr/sbin/mariadbd', '/usr/bin/mariadb-install-db', '/usr/bin/mariadb'].every((p) => fs.existsSync(p));
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mariadbd did not listen on ${port} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `tls`: PEM paths; the server then offers TLS (clients choose it with an SSL request). */
export async function startMariaDb(opts: { maxAllowedPacket?: string; tls?: { cert: string; key: string } } = {}): Promise<MariaDbServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-mariadb-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const port = await freePort();
  const install = spawnSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db'],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`mariadb-install-db failed (${install.status}): ${install.stderr}`);
  }
  const logFile = path.join(dir, 'error.log');
  const child = spawn(
    '/usr/sbin/mariadbd',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${path.join(dir, 'mysqld.pid')}`,
      `--log-error=${logFile}`,
      '--bind-address=127.0.0.1',
      `--port=${port}`,
      '--user=root',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=32M',
      '--innodb-log-file-size=16M',
      '--performance-schema=OFF',
      `--max-allowed-packet=${opts.maxAllowedPacket ?? '64M'}`,
      ...(opts.tls !== undefined ? [`--ssl-cert=${opts.tls.cert}`, `--ssl-key=${opts.tls.key}`] : []),
    ],
    { stdio: 'ignore' },
  );
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, child, log, 30_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const sql = (text: string): string => {
    const r = spawnSync('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '--batch', '--skip-column-names', '-e', text], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mariadb -e failed: ${r.stderr}`);
    return r.stdout;
  };
  const user = 'shopapp';
  const password = 'pw-4f9c2a71';
  const database = 'shop';
  try {
    sql(
      `CREATE DATABASE ${database}; CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; ` +
        `GRANT ALL ON ${database}.* TO '${user}'@'127.0.0.1'; GRANT ALL ON other.* TO '${user}'@'127.0.0.1'; CREATE DATABASE other;`,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, socket, pid: child.pid!, user, password, database, sql, stop };
}
