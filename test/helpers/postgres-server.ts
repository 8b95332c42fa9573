// A throwaway PostgreSQL server for tests: initdb in a temporary folder,
// owned by an unprivileged user when the tests run as root (postgres refuses
// root), listening on a random loopback port and a Unix socket in that
// folder, password (SCRAM) authentication for TCP; optionally TLS with a
// certificate from tls-certs.ts. Debian's postgresql package provides the
// binaries (scripts/setup.sh).

import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

const run = promisify(execFile);

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The superuser (trust over the Unix socket, password over TCP). */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Folder of the Unix socket (psql -h). */
  readonly socketDir: string;
  readonly ssl: boolean;
  /** Runs SQL as the superuser over the Unix socket (setup, not traced as TCP). */
  psql(sql: string): Promise<string>;
  /** The process id of the postmaster. */
  readonly pid: number;
  stop(): Promise<void>;
}

export interface PostgresServerOptions {
  /** PEM files of the server's certificate and key: ssl=on. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  /** Roles (created, superusers) that connect over TCP without a password (raw-protocol test clients). */
  readonly trustUsers?: readonly string[];
}

/** The newest installed PostgreSQL's bin folder, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0]!, 'bin') : undefined;
}

/** Runs a server binary as `owner` (nobody when we are root). */
async function asOwner(owner: string | undefined, bin: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const cmd = owner === undefined ? [bin, ...args] : ['runuser', '-u', owner, '--', bin, ...args];
  const { stdout } = await run(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('PostgreSQL is not installed (scripts/setup.sh installs Debian\'s postgresql)');
  const owner = process.getuid?.() === 0 ? 'nobody' : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const user = options.user ?? 'app';
  const password = options.password ?? 'pw-3c1d9e';
  const database = options.database ?? 'shop';
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, `${password}\n`);
  if (owner !== undefined) execFileSync('chown', ['-R', owner, dir]);
  await asOwner(owner, path.join(bin, 'initdb'), ['-D', data, '-U', user, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'], { LC_ALL: 'C.UTF-8' });
  const port = await freePort();
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'shared_buffers = 16MB',
    'max_connections = 40',
  ];
  if (options.tls !== undefined) {
    for (const [src, name] of [[options.tls.cert, 'server.crt'], [options.tls.key, 'server.key']] as const) {
      fs.copyFileSync(src, path.join(data, name));
      fs.chmodSync(path.join(data, name), 0o600);
      if (owner !== undefined) execFileSync('chown', [owner, path.join(data, name)]);
    }
    conf.push('ssl = on', "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'");
  }
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
  if (options.trustUsers !== undefined && options.trustUsers.length > 0) {
    // First match wins: these lines go before initdb's.
    const hba = path.join(data, 'pg_hba.conf');
    const lines = options.trustUsers.map((u) => `host all ${u} 127.0.0.1/32 trust`).join('\n');
    fs.writeFileSync(hba, `${lines}\n${fs.readFileSync(hba, 'utf8')}`);
  }
  await asOwner(owner, path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const psql = async (sql: string): Promise<string> => {
    const { stdout } = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', user, '-d', 'postgres', '-c', sql], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };
  await psql(`CREATE DATABASE ${database}`);
  for (const u of options.trustUsers ?? []) await psql(`CREATE ROLE ${u} LOGIN SUPERUSER`);
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    socketDir: dir,
    ssl: options.tls !== undefined,
    pid,
    psql: async (sql: string) => {
      const { stdout } = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', user, '-d', database, '-c', sql], {
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await asOwner(owner, path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
