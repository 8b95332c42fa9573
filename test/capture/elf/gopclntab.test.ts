// The Go function table reader against real binaries built here by Go
// (test/e2e/programs/go/https): default, stripped and PIE builds. The
// return instructions it finds from the SP-delta table are checked against
// `go tool objdump`, an independent disassembler.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { ElfError, ElfFile } from '../../../src/capture/elf/elf';
import { amd64Returns, GoPclntab } from '../../../src/capture/elf/gopclntab';
import { classifyElf } from '../../../src/capture/tls/library';
import { goHttpsBinary, type GoBuild } from '../../helpers/tls';

const run = promisify(execFile);
const READ = 'crypto/tls.(*Conn).Read';
const WRITE = 'crypto/tls.(*Conn).Write';
const HANDSHAKES = ['crypto/tls.(*Conn).clientHandshake', 'crypto/tls.(*Conn).serverHandshake'];

/** Addresses of the RET instructions objdump shows in `fn`, and its first instruction. */
async function objdumpReturns(binary: string, fn: string): Promise<{ entry: bigint; returns: bigint[] }> {
  const re = '^' + fn.replace(/[.*()]/g, (c) => `\\${c}`) + '$';
  const { stdout } = await run('go', ['tool', 'objdump', '-s', re, binary], { maxBuffer: 64 * 1024 * 1024 });
  const lines = stdout.split('\n').filter((l) => /^\s+\S*:\d+\s+0x[0-9a-f]+/.test(l));
  const addr = (l: string) => BigInt(/\s(0x[0-9a-f]+)\s/.exec(l)![1]!);
  return { entry: addr(lines[0]!), returns: lines.filter((l) => /\tRET\b/.test(l)).map(addr) };
}

function withTable<T>(binary: string, f: (elf: ElfFile, tab: GoPclntab) => T): T {
  const elf = ElfFile.open(binary);
  try {
    return f(elf, GoPclntab.read(elf, binary));
  } finally {
    elf.close();
  }
}

for (const build of ['default', 'stripped', 'pie'] as GoBuild[]) {
  test(`${build} build: Read and Write found, every return instruction objdump shows and nothing else`, async (t) => {
    const binary = await goHttpsBinary(build);
    const found = withTable(binary, (elf, tab) => {
      t.is(tab.format, '1.18', 'Go 1.19 writes the 1.18 table format');
      t.is(tab.quantum, 1);
      const fns = tab.find(new Set([READ, WRITE, ...HANDSHAKES, 'no.such.function']));
      t.deepEqual([...fns.keys()].sort(), [READ, WRITE, ...HANDSHAKES].sort());
      return [READ, WRITE].map((name) => ({ name, entry: fns.get(name)!.entry, returns: amd64Returns(elf, tab, fns.get(name)!) }));
    });
    if (build === 'stripped') {
      // Not `go tool objdump`'s to check: it needs the symbol table. Same code as the default build, so the same shape.
      const full = await goHttpsBinary('default');
      const expected = withTable(full, (elf, tab) => [READ, WRITE].map((name) => amd64Returns(elf, tab, tab.find(new Set([name])).get(name)!).length));
      t.deepEqual(found.map((f) => f.returns.length), expected);
      return;
    }
    for (const f of found) {
      const oracle = await objdumpReturns(binary, f.name);
      t.is(f.entry, oracle.entry, f.name);
      t.deepEqual(f.returns, oracle.returns, f.name);
      t.true(f.returns.length >= 2, `${f.name}: several returns`);
    }
  });
}

test('classifyElf: a Go binary is Go crypto/tls, probed at each function entry and each return, at file offsets', async (t) => {
  const binary = await goHttpsBinary();
  const lib = classifyElf(binary, binary)!;
  t.is(lib.kind, 'go');
  t.regex(lib.version ?? '', /^1\.\d+/);
  t.is(lib.unprobedReason, undefined);
  const { returns: readReturns } = await objdumpReturns(binary, READ);
  const { returns: writeReturns } = await objdumpReturns(binary, WRITE);
  const count = (program: string) => lib.probes.filter((p) => p.program === program).length;
  t.is(count('uprobe_go_tls_read'), 1);
  t.is(count('uprobe_go_tls_read_ret'), readReturns.length);
  t.is(count('uprobe_go_tls_write'), 1);
  t.is(count('uprobe_go_tls_write_ret'), writeReturns.length);
  t.is(count('uprobe_go_tls_handshake'), 2, 'the client and the server handshake');
  t.true(lib.probes.every((p) => typeof p.at === 'number' && !p.retprobe), 'no uretprobe in a Go binary');
  t.deepEqual(lib.probes.filter((p) => !p.required).map((p) => p.program), ['uprobe_go_tls_handshake', 'uprobe_go_tls_handshake']);
  // The offsets are file offsets of those instructions: the byte there is RET.
  const fd = fs.openSync(binary, 'r');
  try {
    for (const p of lib.probes.filter((q) => q.program.endsWith('_ret'))) {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, p.at as number);
      t.is(b[0], 0xc3);
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('a Go program without crypto/tls is not a TLS library', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-plain-'));
  try {
    fs.writeFileSync(path.join(dir, 'go.mod'), 'module plain\n\ngo 1.17\n');
    fs.writeFileSync(path.join(dir, 'main.go'), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n');
    const out = path.join(dir, 'plain');
    await run('go', ['build', '-o', out, '.'], { cwd: dir, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '', GOCACHE: path.join(dir, 'cache') } });
    t.is(classifyElf(out, out), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged table: an ElfError or an unprobed Go binary with the reason, never a throw from deep inside', async (t) => {
  const binary = await goHttpsBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-bad-'));
  try {
    const elf = ElfFile.open(binary);
    const s = elf.section('.gopclntab')!;
    elf.close();
    const bytes = fs.readFileSync(binary);
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['wrong magic', (b) => b.writeUInt32LE(0x12345678, s.offset), /magic/],
      ['pointer size 4', (b) => (b[s.offset + 7] = 4), /header/],
      ['functab offset past the end', (b) => b.writeBigUInt64LE(BigInt(s.size) * 2n, s.offset + 64), /past its end|out of range/],
    ];
    for (const [label, damage, why] of cases) {
      const f = path.join(dir, label.replace(/ /g, '-'));
      const b = Buffer.from(bytes);
      damage(b);
      fs.writeFileSync(f, b);
      const e = ElfFile.open(f);
      try {
        t.throws(() => GoPclntab.read(e, f), { instanceOf: ElfError, message: why }, label);
      } finally {
        e.close();
      }
      const lib = classifyElf(f, f);
      t.is(lib?.kind, 'go', label);
      t.regex(lib?.unprobedReason ?? '', /function table cannot be read/, label);
      t.deepEqual(lib?.probes, [], label);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
