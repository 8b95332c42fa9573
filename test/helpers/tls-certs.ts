// A throwaway certificate authority for TLS tests, made with the openssl CLI:
// a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate (mutual TLS), all signed by the CA; and a second CA that signed
// none of them, to show that an unknown CA is refused.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  readonly dir: string;
  /** PEM file paths. */
  readonly caCert: string;
  readonly otherCaCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  read(file: string): Buffer;
  cleanup(): void;
}

const run = promisify(execFile);

/** Asynchronous: key generation must not stall the event loop of the tests running beside it. */
async function openssl(dir: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function ca(dir: string, name: string): Promise<void> {
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
}

async function signed(dir: string, name: string, caName: string, ext: string): Promise<void> {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pki-'));
  await Promise.all([ca(dir, 'ca'), ca(dir, 'other-ca')]);
  await Promise.all([
    signed(dir, 'server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'),
    signed(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n'),
  ]);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.pem'),
    otherCaCert: p('other-ca.pem'),
    serverKey: p('server.key'),
    serverCert: p('server.pem'),
    clientKey: p('client.key'),
    clientCert: p('client.pem'),
    read: (f) => fs.readFileSync(f),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
