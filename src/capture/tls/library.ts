// Which TLS library a mapped file is, from its name and its ELF file (our
// own reader: section headers and symbol tables): OpenSSL, which the agent
// probes, or a library it recognises but does not probe. No protocol
// knowledge here, only how the libraries look from outside.

import * as path from 'node:path';
import { ELF_MACHINE, ElfError, ElfFile, STT_FUNC } from '../elf/elf';
import { amd64Returns, GoPclntab } from '../elf/gopclntab';
import type { FileProbe } from '../uprobes/attach-manager';

/** The libraries the agent names. 'openssl' and 'go' are probed (the tls group's uprobes). */
export type TlsLibraryKind = 'openssl' | 'boringssl' | 'gnutls' | 'nss' | 'go' | 'java';

/** One uprobe of the tls group to attach to a file (required: without it the file's plaintext cannot be captured). */
export type TlsProbe = FileProbe;

export interface TlsLibrary {
  readonly kind: TlsLibraryKind;
  /** "3.0.19" for OpenSSL (when the file or its libcrypto says), the Go version for Go binaries. */
  readonly version?: string;
  /** Of the functions the probes attach to, those the file defines. */
  readonly symbols: ReadonlySet<string>;
  /**
   * Their file offsets (st_value through the PT_LOAD segment that maps it):
   * attaching at an offset spares libbpf a walk of the symbol table per
   * probe, which takes ~40-80 ms each in node's 100 MB binary.
   */
  readonly offsets?: ReadonlyMap<string, number>;
  /** What to attach; empty when unprobed. */
  readonly probes: readonly TlsProbe[];
  /** Why the agent does not probe it; undefined when it can. */
  readonly unprobedReason?: string;
}

/** The OpenSSL programs (bpf/uprobes/openssl.bpf.h) and their functions. */
export const OPENSSL_PROBES: ReadonlyArray<{ program: string; symbol: string; retprobe: boolean; required: boolean }> = [
  { program: 'uprobe_ssl_read', symbol: 'SSL_read', retprobe: false, required: true },
  { program: 'uretprobe_ssl_read', symbol: 'SSL_read', retprobe: true, required: true },
  { program: 'uprobe_ssl_write', symbol: 'SSL_write', retprobe: false, required: true },
  { program: 'uretprobe_ssl_write', symbol: 'SSL_write', retprobe: true, required: true },
  { program: 'uprobe_ssl_read_ex', symbol: 'SSL_read_ex', retprobe: false, required: false },
  { program: 'uretprobe_ssl_read_ex', symbol: 'SSL_read_ex', retprobe: true, required: false },
  { program: 'uprobe_ssl_write_ex', symbol: 'SSL_write_ex', retprobe: false, required: false },
  { program: 'uretprobe_ssl_write_ex', symbol: 'SSL_write_ex', retprobe: true, required: false },
  { program: 'uprobe_ssl_do_handshake', symbol: 'SSL_do_handshake', retprobe: false, required: false },
  { program: 'uprobe_ssl_shutdown', symbol: 'SSL_shutdown', retprobe: false, required: false },
  { program: 'uprobe_ssl_free', symbol: 'SSL_free', retprobe: false, required: false },
];

/** Go's crypto/tls functions (bpf/uprobes/go_tls.bpf.h): an entry program, and a program for each return instruction. */
export const GO_TLS_FUNCTIONS: ReadonlyArray<{ name: string; entry: string; ret: string }> = [
  { name: 'crypto/tls.(*Conn).Read', entry: 'uprobe_go_tls_read', ret: 'uprobe_go_tls_read_ret' },
  { name: 'crypto/tls.(*Conn).Write', entry: 'uprobe_go_tls_write', ret: 'uprobe_go_tls_write_ret' },
];

/** The OpenSSL probes a file defining `symbols` takes: at their file offsets, by name for the others. */
export function opensslProbes(symbols: ReadonlySet<string>, offsets: ReadonlyMap<string, number> = new Map()): TlsProbe[] {
  return OPENSSL_PROBES.filter((p) => symbols.has(p.symbol)).map((p) => ({ program: p.program, at: offsets.get(p.symbol) ?? p.symbol, retprobe: p.retprobe, required: p.required }));
}

/**
 * Entry only, optional: marks the connection TLS before the handshake's
 * records. The client's and the server's handshakes, not handshakeContext,
 * which every Read and Write calls first (measured: 3 runs per request).
 */
const GO_TLS_HANDSHAKES = ['crypto/tls.(*Conn).clientHandshake', 'crypto/tls.(*Conn).serverHandshake'] as const;
const GO_TLS_HANDSHAKE_PROGRAM = 'uprobe_go_tls_handshake';

/** Every program some library may need: a build without one of them cannot probe that library. */
export const TLS_PROGRAMS: readonly string[] = [...OPENSSL_PROBES.map((p) => p.program), ...GO_TLS_FUNCTIONS.flatMap((f) => [f.entry, f.ret]), GO_TLS_HANDSHAKE_PROGRAM];

/** The symbols an OpenSSL file must define for the probes to capture plaintext. */
export const OPENSSL_REQUIRED_SYMBOLS = ['SSL_read', 'SSL_write'] as const;
/** Probed too when defined (OpenSSL 1.1.0 has no _ex functions). */
export const OPENSSL_OPTIONAL_SYMBOLS = ['SSL_read_ex', 'SSL_write_ex', 'SSL_do_handshake', 'SSL_shutdown', 'SSL_free'] as const;
const OPENSSL_SYMBOLS: ReadonlySet<string> = new Set([...OPENSSL_REQUIRED_SYMBOLS, ...OPENSSL_OPTIONAL_SYMBOLS]);
/** OpenSSL 1.1.0 and later define it; OpenSSL-compatible layers of other libraries (GnuTLS's libgnutls-openssl) do not. */
const OPENSSL_INIT = 'OPENSSL_init_ssl';
/** BoringSSL defines these; OpenSSL does not. */
const BORINGSSL_MARKERS: ReadonlySet<string> = new Set(['SSL_CTX_set_select_certificate_cb', 'BORINGSSL_self_test']);

const OPENSSL_VERSION_TEXT = /^OpenSSL (\d+\.\d+\.\d+[a-z]*)[ +-]/;

/** "OpenSSL 3.0.19 27 Jan 2026" -> "3.0.19"; also "OpenSSL 1.1.1w  11 Sep 2023". */
export function openSslVersion(text: string | undefined): string | undefined {
  const m = text !== undefined ? OPENSSL_VERSION_TEXT.exec(text) : null;
  return m ? m[1] : undefined;
}

/** OPENSSL_VERSION_TEXT as the file holds it in .rodata, or undefined. */
export function findOpenSslVersion(elf: ElfFile): string | undefined {
  return openSslVersion(elf.findString('.rodata', 'OpenSSL ', { accept: (s) => OPENSSL_VERSION_TEXT.test(s) }));
}

/** By name alone, before reading the file: files whose name says what they are. */
export function kindByName(file: string): TlsLibraryKind | 'libcrypto' | undefined {
  const base = path.basename(file);
  if (/^libssl\.so(\.|$)/.test(base)) return 'openssl';
  if (/^libcrypto\.so(\.|$)/.test(base)) return 'libcrypto';
  // libgnutls-openssl.so: GnuTLS's OpenSSL-compatible API (SSL_read over GnuTLS sessions).
  if (/^libgnutls(-openssl)?\.so(\.|$)/.test(base)) return 'gnutls';
  // NSS's libssl3.so: another library, despite the name.
  if (/^libssl3\.so(\.|$)/.test(base)) return 'nss';
  if (base === 'libjvm.so') return 'java';
  return undefined;
}

/**
 * Classifies the ELF file at `file` (read through `readPath`, e.g.
 * /proc/PID/root/...): a TLS library, or undefined for any other file.
 * Throws an ElfError when the file cannot be read as ELF.
 */
export function classifyElf(file: string, readPath: string): TlsLibrary | undefined {
  const byName = kindByName(file);
  if (byName === 'gnutls') return unprobed('gnutls', 'GnuTLS is not probed (OpenSSL and Go crypto/tls are)');
  if (byName === 'nss') return unprobed('nss', 'NSS is not probed (OpenSSL and Go crypto/tls are)');
  if (byName === 'java') return unprobed('java', 'Java TLS (JSSE) runs in the JVM: not probed');
  if (byName === 'libcrypto') return undefined;
  const elf = ElfFile.open(readPath);
  try {
    const buildinfo = elf.section('.go.buildinfo');
    if (buildinfo) return classifyGo(elf, file);
    const names = new Set([...OPENSSL_SYMBOLS, ...BORINGSSL_MARKERS, OPENSSL_INIT]);
    // The exported symbols first: .symtab (node's is 110k entries) only for a binary that does not export SSL_read/SSL_write.
    let syms = elf.symbols(names, { tables: ['.dynsym'] });
    if (!OPENSSL_REQUIRED_SYMBOLS.every((n) => syms.has(n))) syms = elf.symbols(names);
    const has = (s: string) => syms.has(s);
    const defined = new Set([...OPENSSL_SYMBOLS].filter(has));
    const offsets = new Map<string, number>();
    for (const name of defined) {
      const sym = syms.get(name)!;
      // Only functions with code in the file: anything else is attached by name (libbpf then decides).
      const off = sym.type === STT_FUNC ? elf.fileOffsetOf(sym.value) : undefined;
      if (off !== undefined) offsets.set(name, off);
    }
    const hasApi = OPENSSL_REQUIRED_SYMBOLS.every(has);
    if (!hasApi) {
      // A libssl without SSL_read/SSL_write is not one we can probe.
      return byName === 'openssl' ? { kind: 'openssl', symbols: defined, probes: [], unprobedReason: 'defines no SSL_read/SSL_write' } : undefined;
    }
    if ([...BORINGSSL_MARKERS].some(has)) {
      // Same function names, other structures and semantics: the probes are written against OpenSSL's.
      return { kind: 'boringssl', symbols: defined, probes: [], unprobedReason: 'BoringSSL is not probed (OpenSSL and Go crypto/tls are)' };
    }
    const version = findOpenSslVersion(elf);
    if (!has(OPENSSL_INIT)) {
      // The probes are written for OpenSSL 1.1.0 and later.
      return { kind: 'openssl', ...(version ? { version } : {}), symbols: defined, offsets, probes: [], unprobedReason: 'no OPENSSL_init_ssl: OpenSSL before 1.1.0, or another library with an OpenSSL-like API' };
    }
    return { kind: 'openssl', ...(version ? { version } : {}), symbols: defined, offsets, probes: opensslProbes(defined, offsets) };
  } finally {
    elf.close();
  }
}

function unprobed(kind: TlsLibraryKind, why: string, version?: string): TlsLibrary {
  return { kind, ...(version ? { version } : {}), symbols: new Set(), probes: [], unprobedReason: why };
}

/**
 * A Go binary: probed at crypto/tls.(*Conn).Read and Write, found in its
 * function table, with a probe on each return instruction. Undefined when
 * crypto/tls is not linked in (no TLS in that program).
 */
function classifyGo(elf: ElfFile, file: string): TlsLibrary | undefined {
  const { version } = goVersion(elf);
  let tab: GoPclntab;
  try {
    tab = GoPclntab.read(elf, file);
  } catch (err) {
    if (!(err instanceof ElfError)) throw err;
    return unprobed('go', `its function table cannot be read: ${err.message}`, version);
  }
  const fns = tab.find(new Set([...GO_TLS_FUNCTIONS.map((f) => f.name), ...GO_TLS_HANDSHAKES]));
  if (fns.size === 0) return undefined;
  if (elf.machine !== ELF_MACHINE.x86_64) return unprobed('go', 'Go crypto/tls is probed on amd64 only', version);
  // The probes read arguments from registers: Go 1.17's ABI. A 1.16-format table is 1.16 or 1.17: only the version tells.
  const minor = version !== undefined ? /^1\.(\d+)/.exec(version)?.[1] : undefined;
  const registerAbi = minor !== undefined ? Number(minor) >= 17 : tab.format !== '1.16';
  if (!registerAbi) return unprobed('go', 'Go before 1.17 passes arguments on the stack: not probed', version);
  const symbols = new Set<string>();
  const offsets = new Map<string, number>();
  const probes: TlsProbe[] = [];
  for (const f of GO_TLS_FUNCTIONS) {
    const fn = fns.get(f.name);
    if (!fn) return unprobed('go', `${f.name} not found in its function table`, version);
    let returns: bigint[];
    try {
      returns = amd64Returns(elf, tab, fn);
    } catch (err) {
      if (!(err instanceof ElfError)) throw err;
      return unprobed('go', `cannot read ${f.name}: ${err.message}`, version);
    }
    const entry = elf.fileOffsetOf(fn.entry);
    const rets = returns.map((r) => elf.fileOffsetOf(r));
    if (entry === undefined || rets.length === 0 || rets.some((r) => r === undefined)) {
      return unprobed('go', `no return instruction of ${f.name} found`, version);
    }
    symbols.add(f.name);
    offsets.set(f.name, entry);
    probes.push({ program: f.entry, at: entry, retprobe: false, required: true });
    for (const r of rets) probes.push({ program: f.ret, at: r!, retprobe: false, required: true });
  }
  for (const name of GO_TLS_HANDSHAKES) {
    const fn = fns.get(name);
    const at = fn && elf.fileOffsetOf(fn.entry);
    if (at === undefined) continue;
    symbols.add(name);
    offsets.set(name, at);
    probes.push({ program: GO_TLS_HANDSHAKE_PROGRAM, at, retprobe: false, required: false });
  }
  return { kind: 'go', ...(version ? { version } : {}), symbols, offsets, probes };
}

/** The Go version from .go.buildinfo (Go >= 1.18 inline format: the version string follows the 32-byte header). */
function goVersion(elf: ElfFile): { version?: string } {
  const s = elf.section('.go.buildinfo')!;
  const b = elf.readSection(s, 512);
  if (b.length < 33 || b.toString('latin1', 0, 14) !== '\xff Go buildinf:' || (b[15]! & 2) === 0) return {};
  const [len, n] = uvarint(b, 32);
  if (n === 0 || 32 + n + len > b.length) return {};
  const v = b.toString('latin1', 32 + n, 32 + n + len);
  return /^go\d/.test(v) ? { version: v.slice(2) } : {};
}

function uvarint(b: Buffer, at: number): [number, number] {
  let x = 0;
  for (let i = 0; i < 5 && at + i < b.length; i++) {
    const c = b[at + i]!;
    x += (c & 0x7f) * 2 ** (7 * i);
    if (c < 0x80) return [x, i + 1];
  }
  return [0, 0];
}

export { ElfError };
