import test from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { TlsDiscovery } from '../../../src/capture/tls/discovery';

test('this node process: /usr/bin/node is OpenSSL, reached through /proc/PID/root, keyed by device and inode', (t) => {
  const d = new TlsDiscovery();
  const maps = d.mappings(process.pid)!;
  t.truthy(maps.find((m) => m.path === process.execPath));
  const libs = d.libraries(process.pid, maps);
  const node = libs.find((l) => l.path === fs.realpathSync(process.execPath));
  t.truthy(node, JSON.stringify(libs));
  const st = fs.statSync(process.execPath, { bigint: true });
  t.is(node!.key, `${st.dev}:${st.ino}`);
  t.is(node!.attachPath, `/proc/${process.pid}/root${node!.path}`);
  t.is(node!.library.kind, 'openssl');
  t.is(node!.library.version, process.versions.openssl);
});

test('a process with libssl.so.3 (curl): libssl found, its version read from the libcrypto beside it', async (t) => {
  // curl waits on stdin for the config: it stays alive with its libraries mapped.
  const child = spawn('curl', ['-K', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    const d = new TlsDiscovery();
    let libs = d.libraries(child.pid!, d.mappings(child.pid!) ?? []);
    // Until the loader mapped libcrypto too (it maps libssl first).
    for (let i = 0; i < 100 && !libs.some((l) => l.path.endsWith('/libssl.so.3') && l.library.version !== undefined); i++) {
      await new Promise((r) => setTimeout(r, 20));
      libs = d.libraries(child.pid!, d.mappings(child.pid!) ?? []);
    }
    const ssl = libs.find((l) => l.path.endsWith('/libssl.so.3'));
    t.truthy(ssl, JSON.stringify(libs));
    t.is(ssl!.library.kind, 'openssl');
    t.regex(ssl!.library.version ?? '', /^3\./);
    t.is(libs.filter((l) => l.library.kind === 'openssl').length, 1, 'curl itself defines no SSL_read');
  } finally {
    child.kill();
  }
});

test('a process gone: no mappings, no throw', (t) => {
  const d = new TlsDiscovery();
  t.is(d.mappings(0x3fffffff), undefined);
  t.deepEqual(d.libraries(0x3fffffff, [{ range: '1-2', dev: '0:0', inode: 1, path: '/nonexistent' }]), []);
});
