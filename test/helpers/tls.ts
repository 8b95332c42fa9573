// What the TLS tests share: a CA and a server certificate for 127.0.0.1 and
// localhost (made once per test process with the openssl CLI), the HTTPS
// test programs under test/e2e/programs/ and the Go one built with `go build`
// (once per test process, into a temporary directory).

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './agent';
import { makeTestPki, type TestPki } from './tls-certs';

export const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');
/** What every HTTPS test server answers to GET /items. */
export const ITEMS_BODY = '{"items":["a","b","c"]}';
export const PYTHON_HTTPS_SERVER = path.join(PROGRAMS, 'https_server.py');
export const NODE_HTTPS = path.join(PROGRAMS, 'https_node.js');
const GO_HTTPS_SOURCE = path.join(PROGRAMS, 'go', 'https');

const run = promisify(execFile);
const temporary: string[] = [];
process.once('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

export interface TestCertificates {
  /** PEM file paths. */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

let pki: Promise<TestPki> | undefined;

/** The CA and the server certificate (127.0.0.1, localhost), the same for the whole test process. */
export async function testCertificates(): Promise<TestCertificates> {
  pki ??= makeTestPki().then((p) => {
    temporary.push(p.dir);
    return p;
  });
  const p = await pki;
  return { caCert: p.caCert, serverCert: p.serverCert, serverKey: p.serverKey };
}

/** How the Go program is linked: as `go build` does by default, stripped (-ldflags="-s -w": no symbol table, no DWARF), or a PIE. */
export type GoBuild = 'default' | 'stripped' | 'pie';
const GO_BUILD_FLAGS: Record<GoBuild, string[]> = { default: [], stripped: ['-ldflags=-s -w'], pie: ['-buildmode=pie'] };
const goBinaries = new Map<GoBuild, Promise<string>>();

/**
 * The Go HTTPS server/client (crypto/tls, standard library only), built once
 * per test process and kind of build. Go's caches go to the temporary
 * directory when HOME is not writable (a locked-down CI user).
 */
export function goHttpsBinary(build: GoBuild = 'default'): Promise<string> {
  let binary = goBinaries.get(build);
  if (!binary) {
    binary = (async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-https-'));
      temporary.push(dir);
      const out = path.join(dir, 'https');
      const env: Record<string, string | undefined> = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '' };
      if (!writable(process.env['HOME'])) {
        env['GOCACHE'] = path.join(dir, 'cache');
        env['GOPATH'] = path.join(dir, 'gopath');
      }
      await run('go', ['build', ...GO_BUILD_FLAGS[build], '-o', out, '.'], { cwd: GO_HTTPS_SOURCE, env });
      return out;
    })();
    goBinaries.set(build, binary);
  }
  return binary;
}

function writable(dir: string | undefined): boolean {
  if (dir === undefined) return false;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
