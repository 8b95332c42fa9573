// A small ELF64 reader (little-endian: x86_64 and aarch64): the header, the
// section and program headers, symbols from .dynsym and .symtab, virtual
// address -> file offset through the PT_LOAD segments, and a bounded search
// for strings in a section. Every read is a bounded pread on an open fd: a
// 100 MB binary (node) is never read whole. Malformed or truncated files give
// an ElfError with the path and what was wrong, never a RangeError from deep
// inside a Buffer read.

import * as fs from 'node:fs';

export class ElfError extends Error {}

export const ELF_MACHINE = { x86_64: 62, aarch64: 183 } as const;

export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const PT_LOAD = 1;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly entsize: number;
}

export interface ElfSegment {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: bigint;
  readonly filesz: number;
  readonly memsz: number;
}

export interface ElfSymbol {
  readonly name: string;
  readonly value: bigint;
  readonly size: number;
  /** STT_*: the low 4 bits of st_info. */
  readonly type: number;
  /** STB_*: the high 4 bits of st_info. */
  readonly bind: number;
  /** 0: undefined here (an import). */
  readonly shndx: number;
  /** Which table it came from. */
  readonly table: '.dynsym' | '.symtab';
}

/** Bounds so that a hostile or corrupt file cannot make the reader allocate without limit. */
const MAX_HEADERS = 65_535;
/** A symbol table read in pieces of this many bytes. */
const SYMBOL_CHUNK = 64 * 1024;
/** Default largest section readSection() hands back whole. */
const DEFAULT_MAX_SECTION = 16 * 1024 * 1024;

const ELF_MAGIC = 0x464c457f; // "\x7fELF" little-endian
const SYM_SIZE = 24;

export class ElfFile {
  readonly machine: number;
  /** ET_EXEC (2), ET_DYN (3)... */
  readonly type: number;
  readonly sections: readonly ElfSection[];
  readonly segments: readonly ElfSegment[];
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    readonly fileSize: number,
  ) {
    this.fd = fd;
    const h = this.read(0, 64, 'ELF header');
    if (h.readUInt32LE(0) !== ELF_MAGIC) throw new ElfError(`${path}: not an ELF file`);
    if (h[4] !== 2) throw new ElfError(`${path}: not a 64-bit ELF file (class ${h[4]})`);
    if (h[5] !== 1) throw new ElfError(`${path}: not a little-endian ELF file`);
    this.type = h.readUInt16LE(16);
    this.machine = h.readUInt16LE(18);
    const phoff = this.offsetField(h.readBigUInt64LE(32), 'e_phoff');
    const shoff = this.offsetField(h.readBigUInt64LE(40), 'e_shoff');
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    const shstrndx = h.readUInt16LE(62);

    const segments: ElfSegment[] = [];
    if (phnum > 0) {
      if (phentsize < 56) throw new ElfError(`${path}: program header entries of ${phentsize} bytes`);
      const ph = this.read(phoff, phentsize * Math.min(phnum, MAX_HEADERS), 'program headers');
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        segments.push({
          type: ph.readUInt32LE(o),
          flags: ph.readUInt32LE(o + 4),
          offset: this.offsetField(ph.readBigUInt64LE(o + 8), 'p_offset'),
          vaddr: ph.readBigUInt64LE(o + 16),
          filesz: this.offsetField(ph.readBigUInt64LE(o + 32), 'p_filesz'),
          memsz: this.offsetField(ph.readBigUInt64LE(o + 40), 'p_memsz'),
        });
      }
    }
    this.segments = segments;

    const raw: Array<Omit<ElfSection, 'name'> & { nameOff: number }> = [];
    if (shnum > 0 && shoff > 0) {
      if (shentsize < 64) throw new ElfError(`${path}: section header entries of ${shentsize} bytes`);
      const sh = this.read(shoff, shentsize * Math.min(shnum, MAX_HEADERS), 'section headers');
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          nameOff: sh.readUInt32LE(o),
          type: sh.readUInt32LE(o + 4),
          flags: sh.readBigUInt64LE(o + 8),
          addr: sh.readBigUInt64LE(o + 16),
          offset: this.offsetField(sh.readBigUInt64LE(o + 24), 'sh_offset'),
          size: this.offsetField(sh.readBigUInt64LE(o + 32), 'sh_size'),
          link: sh.readUInt32LE(o + 40),
          entsize: this.offsetField(sh.readBigUInt64LE(o + 56), 'sh_entsize'),
        });
      }
    }
    const strtab = raw[shstrndx];
    const names = strtab && strtab.type !== SHT_NOBITS ? this.read(strtab.offset, Math.min(strtab.size, 1 << 20), 'section names') : undefined;
    this.sections = raw.map(({ nameOff, ...s }) => ({ ...s, name: names ? cString(names, nameOff) : '' }));
  }

  /** Opens and checks `path`; throws an ElfError when it is not a readable 64-bit little-endian ELF file. */
  static open(path: string): ElfFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw new ElfError(`${path}: cannot open: ${(err as Error).message}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      return new ElfFile(path, fd, size);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof ElfError) throw err;
      throw new ElfError(`${path}: ${(err as Error).message}`);
    }
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  /** The first section of that name. */
  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A section's bytes (at most maxBytes of them: default 16 MiB); empty for SHT_NOBITS (.bss). */
  readSection(s: ElfSection, maxBytes = DEFAULT_MAX_SECTION): Buffer {
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    return this.read(s.offset, Math.min(s.size, maxBytes), `section ${s.name || '?'}`);
  }

  /**
   * The symbols of these names that the file defines (shndx != 0), from
   * .dynsym then .symtab (a name in both: the .dynsym one), or the tables
   * given. The tables are read in 64 KiB pieces; only the names asked for
   * are decoded.
   */
  symbols(names: ReadonlySet<string>, opts: { readonly tables?: ReadonlyArray<'.dynsym' | '.symtab'> } = {}): Map<string, ElfSymbol> {
    const out = new Map<string, ElfSymbol>();
    if (names.size === 0) return out;
    const wanted = new Map<string, Buffer>();
    for (const n of names) wanted.set(n, Buffer.from(n + '\0', 'latin1'));
    // Most names of a big binary (node: 185k symbols, mostly C++ "_Z...") fail on their first byte.
    const firstBytes = new Uint8Array(256);
    for (const b of wanted.values()) firstBytes[b[0]!] = 1;
    for (const table of opts.tables ?? (['.dynsym', '.symtab'] as const)) {
      // The dynamic symbols through the GNU hash table, as the loader finds them: a few small reads a name.
      if (table === '.dynsym' && this.hashLookup(wanted, out)) continue;
      const sym = this.sections.find((s) => s.name === table && (s.type === SHT_DYNSYM || s.type === SHT_SYMTAB));
      if (!sym || sym.type === SHT_NOBITS) continue;
      const str = this.sections[sym.link];
      if (!str || str.type !== SHT_STRTAB) throw new ElfError(`${this.path}: ${table} links to section ${sym.link}, not a string table`);
      const strings = this.readSection(str, 256 * 1024 * 1024);
      const entsize = sym.entsize || SYM_SIZE;
      if (entsize < SYM_SIZE) throw new ElfError(`${this.path}: ${table} entries of ${entsize} bytes`);
      const count = Math.floor(sym.size / entsize);
      const perChunk = Math.max(1, Math.floor(SYMBOL_CHUNK / entsize));
      for (let first = 0; first < count && out.size < names.size; first += perChunk) {
        const n = Math.min(perChunk, count - first);
        const buf = this.read(sym.offset + first * entsize, n * entsize, table);
        for (let i = 0; i < n; i++) {
          const o = i * entsize;
          const nameOff = buf.readUInt32LE(o);
          const shndx = buf.readUInt16LE(o + 6);
          if (nameOff === 0 || shndx === 0 || nameOff >= strings.length || firstBytes[strings[nameOff]!] === 0) continue;
          const name = matchName(strings, nameOff, wanted);
          if (name === undefined || out.has(name)) continue;
          const info = buf[o + 4]!;
          out.set(name, {
            name,
            value: buf.readBigUInt64LE(o + 8),
            size: this.offsetField(buf.readBigUInt64LE(o + 16), 'st_size'),
            type: info & 0xf,
            bind: info >> 4,
            shndx,
            table,
          });
        }
      }
    }
    return out;
  }

  /**
   * Looks the wanted names up in .gnu.hash (the dynamic symbols), adding those
   * defined to `out`. False when the file has no usable GNU hash table (then
   * .dynsym is walked instead).
   */
  private hashLookup(wanted: ReadonlyMap<string, Buffer>, out: Map<string, ElfSymbol>): boolean {
    const hash = this.section('.gnu.hash');
    const dynsym = hash ? this.sections[hash.link] : undefined;
    const dynstr = dynsym ? this.sections[dynsym.link] : undefined;
    if (!hash || !dynsym || dynsym.type !== SHT_DYNSYM || !dynstr || dynstr.type !== SHT_STRTAB || hash.size < 16) return false;
    const h = this.read(hash.offset, 16, '.gnu.hash');
    const nbuckets = h.readUInt32LE(0);
    const symoffset = h.readUInt32LE(4);
    const bloomSize = h.readUInt32LE(8);
    const bucketsAt = 16 + bloomSize * 8;
    const chainAt = bucketsAt + nbuckets * 4;
    const entsize = dynsym.entsize || SYM_SIZE;
    const count = Math.floor(dynsym.size / entsize);
    if (nbuckets === 0 || chainAt > hash.size || entsize < SYM_SIZE) throw new ElfError(`${this.path}: malformed .gnu.hash`);
    for (const [name, bytes] of wanted) {
      if (out.has(name)) continue;
      let hv = 5381;
      for (let i = 0; i < bytes.length - 1; i++) hv = (Math.imul(hv, 33) + bytes[i]!) >>> 0;
      let idx = this.read(hash.offset + bucketsAt + (hv % nbuckets) * 4, 4, '.gnu.hash buckets').readUInt32LE(0);
      if (idx < symoffset) continue;
      // Each chain ends at an entry with bit 0 set; bounded by the table's size besides.
      for (; idx < count; idx++) {
        const chainOff = chainAt + (idx - symoffset) * 4;
        if (chainOff + 4 > hash.size) break;
        const ch = this.read(hash.offset + chainOff, 4, '.gnu.hash chain').readUInt32LE(0);
        if (((ch | 1) >>> 0) === ((hv | 1) >>> 0)) {
          const e = this.read(dynsym.offset + idx * entsize, SYM_SIZE, '.dynsym');
          const nameOff = e.readUInt32LE(0);
          const shndx = e.readUInt16LE(6);
          if (shndx !== 0 && nameOff + bytes.length <= dynstr.size && this.read(dynstr.offset + nameOff, bytes.length, '.dynstr').equals(bytes)) {
            const info = e[4]!;
            out.set(name, { name, value: e.readBigUInt64LE(8), size: this.offsetField(e.readBigUInt64LE(16), 'st_size'), type: info & 0xf, bind: info >> 4, shndx, table: '.dynsym' });
            break;
          }
        }
        if (ch & 1) break;
      }
    }
    return true;
  }

  /** The file offset of a virtual address, through the PT_LOAD segment that maps it from the file. */
  fileOffsetOf(vaddr: bigint): number | undefined {
    for (const p of this.segments) {
      if (p.type !== PT_LOAD) continue;
      if (vaddr >= p.vaddr && vaddr < p.vaddr + BigInt(p.filesz)) return p.offset + Number(vaddr - p.vaddr);
    }
    return undefined;
  }

  /** `length` bytes at a virtual address mapped from the file (one PT_LOAD segment), or an ElfError. */
  readVirtual(vaddr: bigint, length: number, what: string): Buffer {
    const at = this.fileOffsetOf(vaddr);
    const end = this.fileOffsetOf(vaddr + BigInt(Math.max(length - 1, 0)));
    if (at === undefined || end === undefined || end - at !== Math.max(length - 1, 0)) {
      throw new ElfError(`${this.path}: ${what} at 0x${vaddr.toString(16)}+${length} is not mapped from the file`);
    }
    return this.read(at, length, what);
  }

  /**
   * The first NUL-terminated string in the section that starts with
   * `prefix` (e.g. "OpenSSL ") and that `accept` takes (default: any),
   * reading at most `maxBytes` of the section in 1 MiB pieces; strings are
   * cut at `maxLength` characters.
   */
  findString(
    sectionName: string,
    prefix: string,
    opts: { readonly accept?: (s: string) => boolean; readonly maxBytes?: number; readonly maxLength?: number } = {},
  ): string | undefined {
    const s = this.section(sectionName);
    if (!s || s.type === SHT_NOBITS) return undefined;
    const maxLength = opts.maxLength ?? 128;
    const needle = Buffer.from(prefix, 'latin1');
    const chunk = 1024 * 1024;
    const limit = Math.min(s.size, opts.maxBytes ?? 64 * 1024 * 1024);
    // Pieces overlap by a string's length, so a match across a boundary is found whole.
    const overlap = needle.length + maxLength;
    for (let at = 0; at < limit; at += chunk) {
      const buf = this.read(s.offset + at, Math.min(chunk + overlap, limit - at), `section ${sectionName}`);
      const starts = Math.min(chunk, buf.length);
      for (let i = buf.indexOf(needle); i >= 0 && i < starts; i = buf.indexOf(needle, i + 1)) {
        // A string's start: the section's first byte or after a NUL.
        if (!(at + i === 0 || (i > 0 && buf[i - 1] === 0))) continue;
        const end = buf.indexOf(0, i);
        const str = buf.toString('latin1', i, end < 0 ? Math.min(buf.length, i + maxLength) : Math.min(end, i + maxLength));
        if (!opts.accept || opts.accept(str)) return str;
      }
    }
    return undefined;
  }

  /** Exactly `length` bytes at `offset`, or an ElfError naming what was being read. */
  private read(offset: number, length: number, what: string): Buffer {
    if (this.fd === undefined) throw new ElfError(`${this.path}: closed`);
    if (offset + length > this.fileSize) throw new ElfError(`${this.path}: truncated: ${what} at ${offset}+${length} past the end (${this.fileSize} bytes)`);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw new ElfError(`${this.path}: truncated: ${what} at ${offset}+${length} ends after ${done} bytes`);
      done += n;
    }
    return buf;
  }

  private offsetField(v: bigint, field: string): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${this.path}: ${field} ${v} out of range`);
    return Number(v);
  }
}

function cString(buf: Buffer, at: number): string {
  if (at >= buf.length) return '';
  const end = buf.indexOf(0, at);
  return buf.toString('latin1', at, end < 0 ? buf.length : end);
}

/** The wanted name at `at` in the string table, compared in place (no string made for the others). */
function matchName(strings: Buffer, at: number, wanted: ReadonlyMap<string, Buffer>): string | undefined {
  for (const [name, bytes] of wanted) {
    if (at + bytes.length <= strings.length && strings.compare(bytes, 0, bytes.length, at, at + bytes.length) === 0) return name;
  }
  return undefined;
}
