// The demo's database: a throwaway PostgreSQL (Debian's, installed by
// scripts/setup.sh) in a temporary folder on a loopback port, with the
// backend's `items` table. The backend queries it per request, so each demo
// trace ends in a database CLIENT span. Without PostgreSQL the demo runs
// without it (the backend then answers from memory).

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DemoDatabase {
  /** libpq connection string for the backend. */
  readonly dsn: string;
  stop(): Promise<void>;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0]!, 'bin') : undefined;
}

/** Starts the server; undefined (with the reason in `why`) when PostgreSQL is not installed. */
export async function startDemoDatabase(port: number, why: (reason: string) => void): Promise<DemoDatabase | undefined> {
  const bin = binDir();
  if (bin === undefined) {
    why('PostgreSQL is not installed (bash scripts/setup.sh installs it): the backend answers without a database');
    return undefined;
  }
  // PostgreSQL refuses to run as root: its files and process belong to nobody then.
  const owner = process.getuid?.() === 0 ? 'nobody' : undefined;
  const as = (file: string, args: string[]) => (owner === undefined ? run(file, args) : run('runuser', ['-u', owner, '--', file, ...args]));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-demo-pg-'));
  fs.chmodSync(dir, 0o755);
  if (owner !== undefined) await run('chown', [owner, dir]);
  const data = path.join(dir, 'data');
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    await as(path.join(bin, 'initdb'), ['-D', data, '-U', 'demo', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
    const conf = [`port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${dir}'`, 'fsync = off', 'shared_buffers = 16MB'];
    fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
    await as(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']);
  } catch (err) {
    remove();
    why(`PostgreSQL did not start (${(err as Error).message.split('\n')[0]}): the backend answers without a database`);
    return undefined;
  }
  const stop = async () => {
    await as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    remove();
  };
  // Setup goes over the Unix socket: only the backend's TCP connection is traced.
  const setup = [
    'CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)',
    "INSERT INTO items SELECT i, 'item-' || i FROM generate_series(1, 5) AS i",
  ].join('; ');
  try {
    await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'demo', '-d', 'postgres', '-c', setup]);
  } catch (err) {
    await stop();
    why(`the demo table could not be made (${(err as Error).message.split('\n')[0]}): the backend answers without a database`);
    return undefined;
  }
  return { dsn: `host=127.0.0.1 port=${port} user=demo dbname=postgres`, stop };
}
