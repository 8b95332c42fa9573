// Go link probes against real binaries built here by the installed Go
// (test/e2e/programs/go/links): the DWARF reader against Go's own
// debug/dwarf (test/e2e/programs/go/dwarf_offsets), the verified table
// against the DWARF, the probes against `go tool objdump`, and what a
// stripped binary of a version not in the table gets.

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { ElfFile } from '../../../src/capture/elf/elf';
import { hasDwarf, structMemberOffsets } from '../../../src/capture/elf/dwarf';
import {
  dwarfOffsets,
  encodeGoLinkOffsets,
  GO_LINK_OFFSETS_FIELDS,
  GO_LINK_OFFSETS_MAP,
  GO_LINK_OFFSETS_SIZE,
  GoLinkRuntime,
  VERIFIED_GO_OFFSETS,
  type GoLinkProbes,
} from '../../../src/capture/links/go';
import { goProgram } from '../../helpers/go-build';
import { ROOT } from '../../helpers/agent';
import { goBinaryWithVersion } from '../../helpers/go-links';

const run = promisify(execFile);
const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs', 'go');
const LINKS = path.join(PROGRAMS, 'links');
const STRUCTS = ['runtime.g', 'net/http.conn', 'net/http.response', 'net/http.persistConn', 'crypto/tls.Conn', 'internal/poll.FD', 'net.netFD'];

function withElf<T>(file: string, f: (elf: ElfFile) => T): T {
  const elf = ElfFile.open(file);
  try {
    return f(elf);
  } finally {
    elf.close();
  }
}

function classify(file: string, runtime = new GoLinkRuntime()): GoLinkProbes | undefined {
  return withElf(file, (elf) => runtime.classify(elf, file));
}

async function installedMinor(): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOVERSION']);
  return /^go(\d+\.\d+)/.exec(stdout.trim())![1]!;
}

/** RET instructions objdump shows in `fn` (an independent disassembler). */
async function objdumpReturns(binary: string, fn: string): Promise<number> {
  const re = '^' + fn.replace(/[.*()]/g, (c) => `\\${c}`) + '$';
  const { stdout } = await run('go', ['tool', 'objdump', '-s', re, binary], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => /^\s+\S*:\d+\s+0x[0-9a-f]+/.test(l) && /\tRET\b/.test(l)).length;
}

const WRITES = ['Write', 'Writev', 'WriteOnce', 'WriteMsg'].map((m) => `internal/poll.(*FD).${m}`).concat(['internal/poll.SendFile', 'internal/poll.Splice']);

/** How many of these functions `go tool nm` lists as text symbols. */
async function symbolsPresent(binary: string, names: readonly string[]): Promise<number> {
  const { stdout } = await run('go', ['tool', 'nm', binary], { maxBuffer: 64 * 1024 * 1024 });
  const text = new Set(stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === 'T').map((f) => f[2]));
  return names.filter((n) => text.has(n)).length;
}

const programs = (p: GoLinkProbes) => p.probes.reduce<Record<string, number>>((m, x) => ((m[x.program] = (m[x.program] ?? 0) + 1), m), {});

test('the DWARF reader agrees with debug/dwarf on every member of the structs read', async (t) => {
  const binary = await goProgram(LINKS);
  const oracle = await goProgram(path.join(PROGRAMS, 'dwarf_offsets'));
  const { stdout } = await run(oracle, [binary, ...STRUCTS]);
  const expected = JSON.parse(stdout) as Record<string, Record<string, number>>;
  t.deepEqual(Object.keys(expected).sort(), [...STRUCTS].sort());
  const found = withElf(binary, (elf) => structMemberOffsets(elf, new Map(STRUCTS.map((s) => [s, Object.keys(expected[s]!)]))))!;
  for (const s of STRUCTS) t.deepEqual(Object.fromEntries(found.get(s)!), expected[s], s);
  t.is(expected['runtime.g']!['goid'], 152, 'Go 1.19: goid after the scheduling state');
});

test('the verified table holds the installed Go version, equal to its DWARF', async (t) => {
  const binary = await goProgram(LINKS);
  const minor = await installedMinor();
  const fromDwarf = withElf(binary, (elf) => dwarfOffsets(elf));
  t.truthy(VERIFIED_GO_OFFSETS.get(minor), `Go ${minor} has no verified layout: check it against DWARF and add it`);
  t.deepEqual(fromDwarf, VERIFIED_GO_OFFSETS.get(minor));
});

test('default build: offsets from DWARF, an entry probe per function and one per return instruction objdump shows', async (t) => {
  const binary = await goProgram(LINKS);
  const p = classify(binary)!;
  t.is(p.unprobedReason, undefined);
  t.is(p.offsetsFrom, 'DWARF');
  t.regex(p.version!, /^1\.\d+/);
  const o = withElf(binary, (elf) => dwarfOffsets(elf))!;
  t.deepEqual(p.offsets, { map: GO_LINK_OFFSETS_MAP, value: encodeGoLinkOffsets(o) });
  t.deepEqual(
    [...p.offsets!.value],
    [...Buffer.from([1, 152, 16, 16, 48, 49, 50, 56, 64, 80, 0, 8, 0, 0].flatMap((v) => [v, 0, 0, 0]))],
    'struct go_link_offsets: ok, goid, rwc, Sysfd, IsStream, ZeroReadIsEOF, isFile, family, sotype, persistConn.conn, response.conn, response.req, conn.server, tls.Conn.conn',
  );
  t.true(p.probes.every((x) => !x.retprobe && x.required && typeof x.at === 'number'));
  t.deepEqual(programs(p), {
    uprobe_link_go_serve: 1,
    uprobe_link_go_serve_ret: await objdumpReturns(binary, 'net/http.serverHandler.ServeHTTP'),
    uprobe_link_go_round_trip: 1,
    // Write, and those of Writev, WriteOnce, WriteMsg, SendFile, Splice the linker kept.
    uprobe_link_go_fd_write: await symbolsPresent(binary, WRITES),
  });
});

test('stripped build (-s -w): no DWARF, offsets from the verified table, the same probes', async (t) => {
  const full = classify(await goProgram(LINKS))!;
  const binary = await goProgram(LINKS, { flags: ['-ldflags=-s -w'] });
  t.false(withElf(binary, hasDwarf));
  const p = classify(binary)!;
  t.is(p.unprobedReason, undefined);
  t.is(p.offsetsFrom, `table ${await installedMinor()}`);
  t.deepEqual(p.offsets, full.offsets);
  t.deepEqual(programs(p), programs(full));
});

test('stripped build of a Go version not in the table: not probed, with the reason', async (t) => {
  const binary = await goBinaryWithVersion(await goProgram(LINKS, { flags: ['-ldflags=-s -w'] }), '1.99');
  const p = classify(binary)!;
  t.regex(p.version!, /^1\.99\./);
  t.deepEqual(p.probes, []);
  t.is(p.offsets, undefined);
  t.regex(p.unprobedReason!, /^no DWARF \(stripped\) and Go 1\.99\.\S+ is not among the verified layouts \(1\.19\)$/);
  // And with DWARF, the version does not matter: the binary says its own layout.
  const withDwarf = await goBinaryWithVersion(await goProgram(LINKS), '1.99');
  t.is(classify(withDwarf)!.offsetsFrom, 'DWARF');
  // An empty table: the stripped binary of the installed version is not probed either.
  const stripped = await goProgram(LINKS, { flags: ['-ldflags=-s -w'] });
  t.regex(classify(stripped, new GoLinkRuntime(new Map()))!.unprobedReason!, /is not among the verified layouts \(none\)$/);
});

test('a Go binary that serves no net/http, and a file that is not Go: not this runtime', async (t) => {
  t.is(classify(await goProgram(path.join(PROGRAMS, 'dwarf_offsets'))), undefined);
  t.is(classify(process.execPath), undefined);
});

test('a truncated DWARF section is an unprobed reason, not a throw', async (t) => {
  const binary = await goProgram(LINKS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-links-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const broken = path.join(dir, 'links');
  const bytes = fs.readFileSync(binary);
  const info = withElf(binary, (elf) => elf.section('.debug_info')!);
  // The zlib stream behind the compression header, cut in the middle.
  bytes.fill(0, info.offset + 24 + 64, info.offset + info.size);
  fs.writeFileSync(broken, bytes);
  t.regex(classify(broken)!.unprobedReason!, /^its DWARF cannot be read: .*\.debug_info/);
});

test('struct go_link_offsets: the encoding matches what the C compiler lays out', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-link-layout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const c = ['ok', 'g_goid', 'conn_rwc', 'fd_sysfd', 'fd_is_stream', 'fd_zero_read_is_eof', 'fd_is_file', 'netfd_family', 'netfd_sotype', 'pc_conn', 'resp_conn', 'resp_req', 'conn_server', 'tls_conn'];
  t.is(c.length, GO_LINK_OFFSETS_FIELDS.length);
  fs.writeFileSync(
    path.join(dir, 'layout.c'),
    [
      '#include <stdio.h>',
      '#include <stddef.h>',
      '#include <linux/types.h>',
      '#include "uprobes/go_link.h"',
      'int main(void) {',
      '  printf("%zu", sizeof(struct go_link_offsets));',
      ...c.map((f) => `  printf(" %zu:%zu", offsetof(struct go_link_offsets, ${f}), sizeof(((struct go_link_offsets *)0)->${f}));`),
      '  return 0;',
      '}',
    ].join('\n'),
  );
  execFileSync('cc', ['-Wall', '-Werror', '-I', path.join(ROOT, 'bpf'), '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
  t.is(execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' }), [String(GO_LINK_OFFSETS_SIZE), ...c.map((_, i) => `${i * 4}:4`)].join(' '));
});
