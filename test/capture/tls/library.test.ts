import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfError, ElfFile } from '../../../src/capture/elf/elf';
import { classifyElf, kindByName, openSslVersion } from '../../../src/capture/tls/library';

const LIB = '/usr/lib/x86_64-linux-gnu';

test('names: libssl is OpenSSL, libssl3 is NSS, libgnutls(-openssl) is GnuTLS, libjvm is Java', (t) => {
  t.is(kindByName('/usr/lib/x86_64-linux-gnu/libssl.so.3'), 'openssl');
  t.is(kindByName('/lib/libssl.so.1.1'), 'openssl');
  t.is(kindByName('/lib/libssl.so'), 'openssl');
  t.is(kindByName('/usr/lib/x86_64-linux-gnu/libssl3.so'), 'nss');
  t.is(kindByName('/usr/lib/libgnutls.so.30'), 'gnutls');
  t.is(kindByName('/usr/lib/libgnutls-openssl.so.27'), 'gnutls');
  t.is(kindByName('/usr/lib/jvm/java-17/lib/server/libjvm.so'), 'java');
  t.is(kindByName('/usr/lib/libcrypto.so.3'), 'libcrypto');
  t.is(kindByName('/usr/lib/libsslx.so'), undefined);
  t.is(kindByName('/usr/bin/node'), undefined);
});

test('OpenSSL version text', (t) => {
  t.is(openSslVersion('OpenSSL 3.0.19 27 Jan 2026'), '3.0.19');
  t.is(openSslVersion('OpenSSL 1.1.1w  11 Sep 2023'), '1.1.1w');
  t.is(openSslVersion('OpenSSL 3.0.15+quic 3 Sep 2024'), '3.0.15');
  t.is(openSslVersion('OpenSSL configuration file'), undefined);
  t.is(openSslVersion(undefined), undefined);
});

test('node: OpenSSL linked in, every probed symbol, its version', (t) => {
  const lib = classifyElf('/usr/bin/node', '/usr/bin/node');
  t.is(lib?.kind, 'openssl');
  t.is(lib?.version, process.versions.openssl);
  t.is(lib?.unprobedReason, undefined);
  t.deepEqual([...lib!.symbols].sort(), ['SSL_do_handshake', 'SSL_free', 'SSL_read', 'SSL_read_ex', 'SSL_shutdown', 'SSL_write', 'SSL_write_ex']);
});

// libbpf's own resolution (elf_find_func_offset): st_value - sh_addr + sh_offset of the symbol's section.
// A probe at a wrong offset lands inside an instruction and crashes the application: both ways must agree.
for (const file of ['/usr/bin/node', `${LIB}/libssl.so.3`]) {
  test(`${path.basename(file)}: the attach offsets are libbpf's (section-relative)`, (t) => {
    const lib = classifyElf(file, file)!;
    const elf = ElfFile.open(file);
    try {
      const syms = elf.symbols(lib.symbols);
      t.is(lib.offsets?.size, lib.symbols.size);
      for (const [name, off] of lib.offsets!) {
        const s = syms.get(name)!;
        const sec = elf.sections[s.shndx]!;
        t.is(off, Number(s.value - sec.addr) + sec.offset, name);
      }
    } finally {
      elf.close();
    }
  });
}

test('libssl.so.3: OpenSSL, probed; its version is in libcrypto, not in it', (t) => {
  const lib = classifyElf(`${LIB}/libssl.so.3`, `${LIB}/libssl.so.3`);
  t.is(lib?.kind, 'openssl');
  t.is(lib?.unprobedReason, undefined);
  t.is(lib?.version, undefined);
  t.true(lib?.symbols.has('SSL_write_ex'));
});

test('curl, libc, libcrypto: not TLS libraries', (t) => {
  t.is(classifyElf('/usr/bin/curl', '/usr/bin/curl'), undefined);
  t.is(classifyElf(`${LIB}/libc.so.6`, `${LIB}/libc.so.6`), undefined);
  t.is(classifyElf(`${LIB}/libcrypto.so.3`, `${LIB}/libcrypto.so.3`), undefined);
});

test('GnuTLS and its OpenSSL-compatible layer: recognised, not probed', (t) => {
  for (const f of ['libgnutls.so.30', 'libgnutls-openssl.so.27']) {
    if (!fs.existsSync(`${LIB}/${f}`)) continue;
    const lib = classifyElf(`${LIB}/${f}`, `${LIB}/${f}`);
    t.is(lib?.kind, 'gnutls', f);
    t.truthy(lib?.unprobedReason);
  }
  t.pass();
});

test('an SSL_read/SSL_write library without OPENSSL_init_ssl is not probed (read, not judged by name)', (t) => {
  const src = `${LIB}/libgnutls-openssl.so.27`;
  if (!fs.existsSync(src)) {
    t.pass('libgnutls-openssl absent');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tlslib-'));
  try {
    const renamed = path.join(dir, 'libcompat.so');
    fs.copyFileSync(src, renamed);
    const lib = classifyElf(renamed, renamed);
    t.is(lib?.kind, 'openssl');
    t.regex(lib?.unprobedReason ?? '', /OPENSSL_init_ssl/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not ELF: an ElfError', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tlslib-'));
  try {
    const f = path.join(dir, 'libfoo.so');
    fs.writeFileSync(f, '#!/bin/sh\necho not elf, but long enough to be read as a header of sixty-four bytes\n');
    t.throws(() => classifyElf(f, f), { instanceOf: ElfError });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
