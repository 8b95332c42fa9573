// Struct member offsets from a binary's DWARF (.debug_info, .debug_abbrev),
// enough to read the layout of a few named structs: a walk over the
// debugging entries, no type graph. Sections may be compressed (SHF_COMPRESSED
// with zlib, Go 1.19 and later's linker; or .zdebug_*, Go before it).
// DWARF 2 to 5, 32- and 64-bit units. Anything it does not understand is an
// ElfError, never a guess: callers fall back to what they verified otherwise.

import * as zlib from 'node:zlib';
import { ElfError, type ElfFile, type ElfSection } from './elf';

const SHF_COMPRESSED = 0x800n;
const ELFCOMPRESS_ZLIB = 1;
/** Bounds what a hostile file makes us inflate (node-sized Go binaries carry ~100 MiB of DWARF). */
const MAX_DWARF = 512 * 1024 * 1024;

const DW_TAG_structure_type = 0x13;
const DW_TAG_member = 0x0d;
const DW_AT_name = 0x03;
const DW_AT_data_member_location = 0x38;
const DW_OP_plus_uconst = 0x23;

/** Whether the file carries DWARF debugging entries at all (`-ldflags=-w` and strip remove them). */
export function hasDwarf(elf: ElfFile): boolean {
  return (elf.section('.debug_info') ?? elf.section('.zdebug_info')) !== undefined;
}

/**
 * The offsets of the wanted members of the wanted structs ("runtime.g" ->
 * ["goid"]), for the structs found with all their wanted members; the
 * first definition of a name wins. Undefined when the file has no DWARF.
 */
export function structMemberOffsets(
  elf: ElfFile,
  wanted: ReadonlyMap<string, readonly string[]>,
): Map<string, Map<string, number>> | undefined {
  const info = debugSection(elf, 'info');
  const abbrev = debugSection(elf, 'abbrev');
  if (!info || !abbrev) return undefined;
  const out = new Map<string, Map<string, number>>();
  const abbrevCache = new Map<number, Map<number, Abbrev>>();
  let at = 0;
  while (at < info.length && out.size < wanted.size) {
    const unit = readUnit(info, at, elf.path);
    let table = abbrevCache.get(unit.abbrevOffset);
    if (!table) abbrevCache.set(unit.abbrevOffset, (table = readAbbrevs(abbrev, unit.abbrevOffset, elf.path)));
    walkUnit(info, unit, table, wanted, out, elf.path);
    at = unit.end;
  }
  return out;
}

interface Unit {
  readonly version: number;
  readonly offsetSize: 4 | 8;
  readonly addressSize: number;
  readonly abbrevOffset: number;
  /** First entry, and the unit's end. */
  readonly entries: number;
  readonly end: number;
}

interface Abbrev {
  readonly tag: number;
  readonly children: boolean;
  /** [attribute, form, implicit constant]. */
  readonly attrs: ReadonlyArray<readonly [number, number, number]>;
}

function debugSection(elf: ElfFile, name: string): Buffer | undefined {
  const plain = elf.section(`.debug_${name}`);
  if (plain) return (plain.flags & SHF_COMPRESSED) !== 0n ? inflateChdr(elf, plain) : elf.readSection(plain, MAX_DWARF);
  const z = elf.section(`.zdebug_${name}`);
  if (!z) return undefined;
  // "ZLIB", the size as a big-endian u64, the zlib stream.
  const b = elf.readSection(z, MAX_DWARF);
  if (b.length < 12 || b.toString('latin1', 0, 4) !== 'ZLIB') throw new ElfError(`${elf.path}: ${z.name} has no ZLIB header`);
  return inflate(b.subarray(12), Number(b.readBigUInt64BE(4)), elf.path, z.name);
}

function inflateChdr(elf: ElfFile, s: ElfSection): Buffer {
  const b = elf.readSection(s, MAX_DWARF);
  // Elf64_Chdr: ch_type u32, ch_reserved u32, ch_size u64, ch_addralign u64.
  if (b.length < 24) throw new ElfError(`${elf.path}: ${s.name} too short for its compression header`);
  if (b.readUInt32LE(0) !== ELFCOMPRESS_ZLIB) throw new ElfError(`${elf.path}: ${s.name} compressed with type ${b.readUInt32LE(0)}, not zlib`);
  return inflate(b.subarray(24), Number(b.readBigUInt64LE(8)), elf.path, s.name);
}

function inflate(b: Buffer, size: number, path: string, name: string): Buffer {
  if (size > MAX_DWARF) throw new ElfError(`${path}: ${name} of ${size} bytes is over the ${MAX_DWARF} read`);
  try {
    const out = zlib.inflateSync(b, { maxOutputLength: Math.max(size, 1) });
    if (out.length !== size) throw new ElfError(`${path}: ${name} inflated to ${out.length} bytes, not ${size}`);
    return out;
  } catch (err) {
    if (err instanceof ElfError) throw err;
    throw new ElfError(`${path}: ${name} does not inflate: ${(err as Error).message}`);
  }
}

function readUnit(info: Buffer, at: number, path: string): Unit {
  const r = new Reader(info, at, path);
  let length = r.u32();
  let offsetSize: 4 | 8 = 4;
  if (length === 0xffffffff) {
    length = r.u64();
    offsetSize = 8;
  } else if (length >= 0xfffffff0) {
    throw new ElfError(`${path}: .debug_info unit at ${at} has reserved length 0x${length.toString(16)}`);
  }
  const end = r.at + length;
  if (end > info.length) throw new ElfError(`${path}: .debug_info unit at ${at} runs past the section`);
  const version = r.u16();
  if (version < 2 || version > 5) throw new ElfError(`${path}: DWARF version ${version} at ${at}`);
  let addressSize: number;
  let abbrevOffset: number;
  if (version === 5) {
    const unitType = r.u8();
    addressSize = r.u8();
    abbrevOffset = r.offset(offsetSize);
    // DW_UT_skeleton/split_compile: an 8-byte id; type units: signature and type offset.
    if (unitType === 4 || unitType === 5) r.skip(8);
    else if (unitType === 2 || unitType === 6) r.skip(8 + offsetSize);
  } else {
    abbrevOffset = r.offset(offsetSize);
    addressSize = r.u8();
  }
  return { version, offsetSize, addressSize, abbrevOffset, entries: r.at, end };
}

function readAbbrevs(abbrev: Buffer, at: number, path: string): Map<number, Abbrev> {
  const r = new Reader(abbrev, at, path);
  const out = new Map<number, Abbrev>();
  for (;;) {
    const code = r.uleb();
    if (code === 0) return out;
    const tag = r.uleb();
    const children = r.u8() !== 0;
    const attrs: Array<readonly [number, number, number]> = [];
    for (;;) {
      const attr = r.uleb();
      const form = r.uleb();
      if (attr === 0 && form === 0) break;
      attrs.push([attr, form, form === 0x21 /* implicit_const */ ? r.sleb() : 0]);
    }
    out.set(code, { tag, children, attrs });
  }
}

function walkUnit(
  info: Buffer,
  unit: Unit,
  table: Map<number, Abbrev>,
  wanted: ReadonlyMap<string, readonly string[]>,
  out: Map<string, Map<string, number>>,
  path: string,
): void {
  const r = new Reader(info, unit.entries, path);
  let depth = 0;
  // The wanted struct being read: its name, its members' depth, what was found.
  let current: { name: string; depth: number; members: Map<string, number> } | undefined;
  while (r.at < unit.end) {
    const code = r.uleb();
    if (code === 0) {
      depth--;
      if (current && depth < current.depth) {
        const members = wanted.get(current.name)!;
        if (members.every((m) => current!.members.has(m)) && !out.has(current.name)) out.set(current.name, current.members);
        current = undefined;
        if (out.size === wanted.size) return;
      }
      continue;
    }
    const a = table.get(code);
    if (!a) throw new ElfError(`${path}: .debug_info entry at ${r.at} uses abbreviation ${code}, not defined`);
    let name: string | undefined;
    let location: number | undefined;
    for (const [attr, form, implicit] of a.attrs) {
      if (attr === DW_AT_name) name = readString(r, form, unit);
      else if (attr === DW_AT_data_member_location) location = readLocation(r, form, implicit, unit);
      else skipForm(r, form, unit);
    }
    if (a.tag === DW_TAG_member && current && depth === current.depth && name !== undefined && location !== undefined) {
      current.members.set(name, location);
    }
    if (a.tag === DW_TAG_structure_type && a.children && !current && name !== undefined && wanted.has(name) && !out.has(name)) {
      current = { name, depth: depth + 1, members: new Map() };
    }
    if (a.children) depth++;
  }
}

/** A name held in the entry (DW_FORM_string); a name in .debug_str is not needed here: undefined. */
function readString(r: Reader, form: number, unit: Unit): string | undefined {
  if (form === 0x08) return r.cstring();
  skipForm(r, form, unit);
  return undefined;
}

function readLocation(r: Reader, form: number, implicit: number, unit: Unit): number | undefined {
  switch (form) {
    case 0x0b: return r.u8();
    case 0x05: return r.u16();
    case 0x06: return r.u32();
    case 0x07: return r.u64();
    case 0x0f: return r.uleb();
    case 0x0d: return r.sleb();
    case 0x21: return implicit;
    case 0x0a: // block1
    case 0x18: { // exprloc
      const len = form === 0x0a ? r.u8() : r.uleb();
      const end = r.at + len;
      let v: number | undefined;
      if (len > 0 && r.u8() === DW_OP_plus_uconst) v = r.uleb();
      r.at = end;
      return v;
    }
    default:
      skipForm(r, form, unit);
      return undefined;
  }
}

function skipForm(r: Reader, form: number, unit: Unit): void {
  switch (form) {
    case 0x01: r.skip(unit.addressSize); return; // addr
    case 0x0b: case 0x0c: case 0x11: case 0x25: case 0x29: r.skip(1); return; // data1 flag ref1 strx1 addrx1
    case 0x05: case 0x12: case 0x26: case 0x2a: r.skip(2); return; // data2 ref2 strx2 addrx2
    case 0x27: case 0x2b: r.skip(3); return; // strx3 addrx3
    case 0x06: case 0x13: case 0x28: case 0x2c: r.skip(4); return; // data4 ref4 strx4 addrx4
    case 0x07: case 0x14: case 0x20: r.skip(8); return; // data8 ref8 ref_sig8
    case 0x1e: r.skip(16); return; // data16
    case 0x0e: case 0x17: case 0x1f: case 0x1d: r.skip(unit.offsetSize); return; // strp sec_offset line_strp strp_sup
    case 0x10: r.skip(unit.version <= 2 ? unit.addressSize : unit.offsetSize); return; // ref_addr
    case 0x08: r.cstring(); return; // string
    case 0x0f: case 0x0d: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: r.uleb(); return; // udata sdata ref_udata strx addrx loclistx rnglistx
    case 0x19: case 0x21: return; // flag_present implicit_const
    case 0x0a: r.skip(r.u8()); return; // block1
    case 0x03: r.skip(r.u16()); return; // block2
    case 0x04: r.skip(r.u32()); return; // block4
    case 0x09: case 0x18: r.skip(r.uleb()); return; // block exprloc
    case 0x16: skipForm(r, r.uleb(), unit); return; // indirect
    default: throw new ElfError(`${r.path}: DWARF form 0x${form.toString(16)} at ${r.at} not known`);
  }
}

/** Bounded little-endian reads: running past the buffer is an ElfError. */
class Reader {
  constructor(
    private readonly b: Buffer,
    public at: number,
    readonly path: string,
  ) {}

  private need(n: number): number {
    const at = this.at;
    if (n < 0 || at + n > this.b.length) throw new ElfError(`${this.path}: DWARF runs past its section at ${at}`);
    this.at += n;
    return at;
  }

  skip(n: number): void {
    this.need(n);
  }

  u8(): number {
    return this.b[this.need(1)]!;
  }

  u16(): number {
    return this.b.readUInt16LE(this.need(2));
  }

  u32(): number {
    return this.b.readUInt32LE(this.need(4));
  }

  u64(): number {
    const v = this.b.readBigUInt64LE(this.need(8));
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${this.path}: DWARF value at ${this.at - 8} too large`);
    return Number(v);
  }

  offset(size: 4 | 8): number {
    return size === 4 ? this.u32() : this.u64();
  }

  uleb(): number {
    let x = 0;
    for (let i = 0; ; i++) {
      const c = this.u8();
      if (i < 8) x += (c & 0x7f) * 2 ** (7 * i);
      if (c < 0x80) return x;
      if (i > 16) throw new ElfError(`${this.path}: DWARF LEB128 too long at ${this.at}`);
    }
  }

  sleb(): number {
    let x = 0;
    let shift = 0;
    let c: number;
    do {
      c = this.u8();
      if (shift < 56) x += (c & 0x7f) * 2 ** shift;
      shift += 7;
      if (shift > 112) throw new ElfError(`${this.path}: DWARF LEB128 too long at ${this.at}`);
    } while (c >= 0x80);
    if (c & 0x40 && shift < 56) x -= 2 ** shift;
    return x;
  }

  cstring(): string {
    const end = this.b.indexOf(0, this.at);
    if (end < 0) throw new ElfError(`${this.path}: DWARF string at ${this.at} not terminated`);
    const s = this.b.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }
}
