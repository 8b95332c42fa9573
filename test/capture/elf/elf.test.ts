import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ELF_MACHINE, ElfError, ElfFile, STB_GLOBAL, STT_FUNC } from '../../../src/capture/elf/elf';

const NODE = '/usr/bin/node';
const LIBSSL = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
const LIBCRYPTO = '/usr/lib/x86_64-linux-gnu/libcrypto.so.3';
const CURL = '/usr/bin/curl';
const SSL_NAMES = new Set(['SSL_read', 'SSL_write', 'SSL_read_ex', 'SSL_write_ex']);

/** Defined symbols as `nm -D` prints them: name (version suffix dropped) -> value. */
function nmDefined(file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of execFileSync('nm', ['-D', '--defined-only', file], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n')) {
    const m = /^([0-9a-f]+) \w (\S+)$/.exec(line);
    if (m) out.set(m[2]!.split('@')[0]!, BigInt('0x' + m[1]));
  }
  return out;
}

const present = (f: string) => fs.existsSync(f);

for (const file of [NODE, LIBSSL]) {
  test(`${path.basename(file)}: SSL_read/SSL_write(_ex) values as nm -D prints them`, (t) => {
    if (!present(file)) {
      t.pass(`${file} absent on this machine`);
      return;
    }
    const nm = nmDefined(file);
    const elf = ElfFile.open(file);
    try {
      t.is(elf.machine, ELF_MACHINE.x86_64);
      const syms = elf.symbols(SSL_NAMES);
      t.deepEqual([...syms.keys()].sort(), [...SSL_NAMES].sort());
      for (const [name, s] of syms) {
        t.is(s.value, nm.get(name)!, name);
        t.is(s.type, STT_FUNC, name);
        t.is(s.bind, STB_GLOBAL, name);
        t.is(s.table, '.dynsym');
        t.true(s.size > 0);
        // The code is in the file: its offset falls inside it.
        const off = elf.fileOffsetOf(s.value);
        t.not(off, undefined);
        t.true(off! < elf.fileSize);
      }
    } finally {
      elf.close();
    }
  });
}

test('curl imports SSL_read but defines none of the SSL symbols', (t) => {
  if (!present(CURL)) {
    t.pass('no curl here');
    return;
  }
  const elf = ElfFile.open(CURL);
  try {
    t.is(elf.symbols(SSL_NAMES).size, 0);
    t.truthy(elf.section('.dynsym'));
    t.is(elf.section('.go.buildinfo'), undefined);
  } finally {
    elf.close();
  }
});

test('the OpenSSL version string: in node and libcrypto, not in libssl', (t) => {
  const version = (f: string) => {
    const elf = ElfFile.open(f);
    try {
      return elf.findString('.rodata', 'OpenSSL ', { accept: (s) => /^OpenSSL \d+\.\d+\.\d+ /.test(s) });
    } finally {
      elf.close();
    }
  };
  if (present(NODE)) t.is(version(NODE)?.split(' ')[1], process.versions.openssl);
  if (present(LIBCRYPTO)) {
    const expected = execFileSync('strings', [LIBCRYPTO], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').find((l) => /^OpenSSL \d+\.\d+\.\d+ /.test(l));
    t.is(version(LIBCRYPTO), expected);
  }
  if (present(LIBSSL)) t.is(version(LIBSSL), undefined);
});

test('sections by name, bounded section reads, offsets of the PT_LOAD segments', (t) => {
  const elf = ElfFile.open(LIBSSL);
  try {
    const text = elf.section('.text')!;
    t.truthy(text);
    // In a shared object .text's address maps to its own file offset through PT_LOAD.
    t.is(elf.fileOffsetOf(text.addr), text.offset);
    t.is(elf.readSection(text, 16).length, 16);
    t.is(elf.readSection(elf.section('.bss')!).length, 0);
    t.is(elf.fileOffsetOf(0xffff_ffff_ffffn), undefined);
  } finally {
    elf.close();
  }
});

test('without .gnu.hash the dynamic symbols are found by walking .dynsym: the same values', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elf-'));
  try {
    const full = fs.readFileSync(LIBSSL);
    const elf = ElfFile.open(LIBSSL);
    const byHash = elf.symbols(SSL_NAMES);
    const hashIdx = elf.sections.indexOf(elf.section('.gnu.hash')!);
    const dynsymIdx = elf.sections.indexOf(elf.section('.dynsym')!);
    elf.close();
    t.true(hashIdx > 0);
    // Give .gnu.hash the name of .dynsym's string table section: it is no longer found by its name.
    const sh = Number(full.readBigUInt64LE(40));
    const copy = Buffer.from(full);
    copy.writeUInt32LE(full.readUInt32LE(sh + (dynsymIdx + 1) * 64), sh + hashIdx * 64);
    const f = path.join(dir, 'libssl-nohash.so');
    fs.writeFileSync(f, copy);
    const e = ElfFile.open(f);
    try {
      t.is(e.section('.gnu.hash'), undefined);
      const sorted = (m: Map<string, unknown>) => [...m].sort(([a], [b]) => a.localeCompare(b));
      t.deepEqual(sorted(e.symbols(SSL_NAMES)), sorted(byHash));
      t.is(byHash.size, 4);
    } finally {
      e.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('not ELF, truncated, missing: an ElfError naming the file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elf-'));
  try {
    const text = path.join(dir, 'text');
    fs.writeFileSync(text, 'hello, this is not an ELF file at all, but long enough to have a header............');
    t.throws(() => ElfFile.open(text), { instanceOf: ElfError, message: /not an ELF file/ });
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    t.throws(() => ElfFile.open(empty), { instanceOf: ElfError, message: /truncated/ });
    t.throws(() => ElfFile.open(path.join(dir, 'missing')), { instanceOf: ElfError, message: /cannot open/ });
    // The first 4 KiB of libssl: the header is there, the section headers (at the end) are not.
    const cut = path.join(dir, 'libssl-cut.so');
    const fd = fs.openSync(LIBSSL, 'r');
    const head = Buffer.alloc(4096);
    fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    fs.writeFileSync(cut, head);
    t.throws(() => ElfFile.open(cut), { instanceOf: ElfError, message: new RegExp(`${cut}: truncated: section headers`) });
    // Section headers present, symbol table cut: the error comes from symbols(), still an ElfError.
    const full = fs.readFileSync(LIBSSL);
    const elf = ElfFile.open(LIBSSL);
    const dynsym = elf.section('.dynsym')!;
    const sh = full.readBigUInt64LE(40);
    elf.close();
    const holed = Buffer.from(full);
    // Point .dynsym's offset past the end of the file.
    const idx = (() => {
      const e = ElfFile.open(LIBSSL);
      try {
        return e.sections.indexOf(e.section('.dynsym')!);
      } finally {
        e.close();
      }
    })();
    holed.writeBigUInt64LE(BigInt(full.length + 100), Number(sh) + idx * 64 + 24);
    const bad = path.join(dir, 'libssl-bad.so');
    fs.writeFileSync(bad, holed);
    t.true(dynsym.size > 0);
    const b = ElfFile.open(bad);
    try {
      t.throws(() => b.symbols(SSL_NAMES), { instanceOf: ElfError, message: /truncated: \.dynsym/ });
    } finally {
      b.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
