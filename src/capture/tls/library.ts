// Which TLS library a mapped file is, from its name and its ELF file (our
// own reader: section headers and symbol tables): OpenSSL, which the agent
// probes, or a library it recognises but does not probe. No protocol
// knowledge here, only how the libraries look from outside.

import * as path from 'node:path';
import { ElfError, ElfFile, STT_FUNC } from '../elf/elf';

/** The libraries the agent names. Only 'openssl' is probed (the tls group's uprobes). */
export type TlsLibraryKind = 'openssl' | 'boringssl' | 'gnutls' | 'nss' | 'go' | 'java';

export interface TlsLibrary {
  readonly kind: TlsLibraryKind;
  /** "3.0.19" for OpenSSL (when the file or its libcrypto says), the Go version for Go binaries. */
  readonly version?: string;
  /** Of the symbols the probes attach to, those the file defines. */
  readonly symbols: ReadonlySet<string>;
  /**
   * Their file offsets (st_value through the PT_LOAD segment that maps it):
   * attaching at an offset spares libbpf a walk of the symbol table per
   * probe, which takes ~40-80 ms each in node's 100 MB binary.
   */
  readonly offsets?: ReadonlyMap<string, number>;
  /** Why the agent does not probe it; undefined when it can. */
  readonly unprobedReason?: string;
}

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
  if (byName === 'gnutls') return { kind: 'gnutls', symbols: new Set(), unprobedReason: 'GnuTLS is not probed (only OpenSSL is)' };
  if (byName === 'nss') return { kind: 'nss', symbols: new Set(), unprobedReason: 'NSS is not probed (only OpenSSL is)' };
  if (byName === 'java') return { kind: 'java', symbols: new Set(), unprobedReason: 'Java TLS (JSSE) runs in the JVM: not probed' };
  if (byName === 'libcrypto') return undefined;
  const elf = ElfFile.open(readPath);
  try {
    const buildinfo = elf.section('.go.buildinfo');
    if (buildinfo) {
      return { kind: 'go', ...goVersion(elf), symbols: new Set(), unprobedReason: 'Go crypto/tls is not probed yet' };
    }
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
      return byName === 'openssl' ? { kind: 'openssl', symbols: defined, unprobedReason: 'defines no SSL_read/SSL_write' } : undefined;
    }
    if ([...BORINGSSL_MARKERS].some(has)) {
      // Same function names, other structures and semantics: the probes are written against OpenSSL's.
      return { kind: 'boringssl', symbols: defined, unprobedReason: 'BoringSSL is not probed (only OpenSSL is)' };
    }
    const version = findOpenSslVersion(elf);
    if (!has(OPENSSL_INIT)) {
      // The probes are written for OpenSSL 1.1.0 and later.
      return { kind: 'openssl', ...(version ? { version } : {}), symbols: defined, offsets, unprobedReason: 'no OPENSSL_init_ssl: OpenSSL before 1.1.0, or another library with an OpenSSL-like API' };
    }
    return { kind: 'openssl', ...(version ? { version } : {}), symbols: defined, offsets };
  } finally {
    elf.close();
  }
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
