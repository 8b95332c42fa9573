// What the TLS tests share: a CA and a server certificate for 127.0.0.1 and
// localhost (made once per test process with the openssl CLI), the HTTPS
// test programs under test/e2e/programs/ and the Go one built with `go build`
// (once per test process, into a temporary directory).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './agent';
import { makeTestPki, type TestPki } from './tls-certs';
import { goProgram } from './go-build';

export const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');
/** What every HTTPS test server answers to GET /items. */
export const ITEMS_BODY = '{"items":["a","b","c"]}';
export const PYTHON_HTTPS_SERVER = path.join(PROGRAMS, 'https_server.py');
export const NODE_HTTPS = path.join(PROGRAMS, 'https_node.js');
const GO_HTTPS_SOURCE = path.join(PROGRAMS, 'go', 'https');

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
/**
 * The Go HTTPS server/client (crypto/tls, standard library only), built once
 * per test process and kind of build (go-build.ts).
 */
export function goHttpsBinary(build: GoBuild = 'default'): Promise<string> {
  return goProgram(GO_HTTPS_SOURCE, { flags: GO_BUILD_FLAGS[build] });
}
