// Go's function table (pclntab), read from the binary's .gopclntab section:
// it survives `-ldflags=-s -w` and strip, unlike the symbol table, so Go
// functions are found in stripped binaries too. Formats: Go 1.16/1.17
// (magic 0xfffffffa), 1.18/1.19 (0xfffffff0) and 1.20 and later
// (0xfffffff1), as the Go runtime's symtab.go lays them out.
//
// Besides where a function starts and ends, its SP-delta table (pcsp) says
// where its instructions begin: the table changes value only at an
// instruction boundary. A return on amd64 is where the frame is gone (delta
// back to 0 after the epilogue's POPQ BP) and the byte there is RET (0xC3),
// after one-byte NOPs (0x90) the linker may put first:
// that gives return instructions without disassembling, and nothing is
// claimed where the table and the byte do not agree.

import { ElfError, type ElfFile, type ElfSection } from './elf';

const MAGIC_GO116 = 0xfffffffa;
const MAGIC_GO118 = 0xfffffff0;
const MAGIC_GO120 = 0xfffffff1;
const X86_RET = 0xc3;
const X86_NOP = 0x90;
/** Larger than any real pclntab (node-sized Go binaries have ~10 MiB): bounds what a hostile file makes us read. */
const MAX_PCLNTAB = 256 * 1024 * 1024;
/** A function's code read to check its returns: Go's largest functions are well under this. */
const MAX_FUNCTION_BYTES = 1024 * 1024;

export interface GoFunction {
  readonly name: string;
  /** Virtual addresses: the first instruction, and the next function's (the end). */
  readonly entry: bigint;
  readonly end: bigint;
  /** Offset of its _func record in the table (pcsp and friends). */
  readonly funcOffset: number;
}

/** A range of instructions [start, end) and the SP delta the function has there. */
export interface SpRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly delta: number;
}

export class GoPclntab {
  private constructor(
    private readonly path: string,
    private readonly tab: Buffer,
    /** '1.16' for 1.16-1.17 tables, '1.18' for 1.18-1.19, '1.20' for 1.20 and later. */
    readonly format: '1.16' | '1.18' | '1.20',
    /** Instruction size unit: 1 on amd64, 4 on arm64. */
    readonly quantum: number,
    private readonly nfunc: number,
    private readonly textStart: bigint,
    private readonly funcnameOffset: number,
    private readonly pctabOffset: number,
    private readonly functabOffset: number,
  ) {}

  /** The binary's pclntab; throws an ElfError saying why when there is none or it does not parse. */
  static read(elf: ElfFile, path: string): GoPclntab {
    // .data.rel.ro.gopclntab: -buildmode=pie.
    const s: ElfSection | undefined = elf.section('.gopclntab') ?? elf.section('.data.rel.ro.gopclntab');
    if (!s) throw new ElfError(`${path}: no .gopclntab section`);
    if (s.size < 72) throw new ElfError(`${path}: .gopclntab too short (${s.size} bytes)`);
    if (s.size > MAX_PCLNTAB) throw new ElfError(`${path}: .gopclntab of ${s.size} bytes is over the ${MAX_PCLNTAB} read`);
    const tab = elf.readSection(s, MAX_PCLNTAB);
    const magic = tab.readUInt32LE(0);
    const quantum = tab[6]!;
    const ptrSize = tab[7]!;
    if (tab[4] !== 0 || tab[5] !== 0 || (quantum !== 1 && quantum !== 4) || ptrSize !== 8) {
      throw new ElfError(`${path}: .gopclntab header not one of a 64-bit Go binary`);
    }
    const word = (at: number): number => {
      const v = tab.readBigUInt64LE(at);
      if (v > BigInt(tab.length) * 16n) throw new ElfError(`${path}: .gopclntab header field at ${at} out of range (${v})`);
      return Number(v);
    };
    let format: GoPclntab['format'];
    let textStart = 0n;
    let at: number;
    if (magic === MAGIC_GO118 || magic === MAGIC_GO120) {
      format = magic === MAGIC_GO118 ? '1.18' : '1.20';
      textStart = tab.readBigUInt64LE(24);
      // A PIE built with external linking fills it in by relocation: the file holds 0.
      if (textStart === 0n) textStart = elf.section('.text')?.addr ?? 0n;
      at = 32;
    } else if (magic === MAGIC_GO116) {
      format = '1.16';
      at = 24;
    } else {
      throw new ElfError(`${path}: .gopclntab magic 0x${magic.toString(16)}: a Go version before 1.16, or not Go`);
    }
    const nfunc = word(8);
    const funcnameOffset = word(at);
    const pctabOffset = word(at + 24);
    const functabOffset = word(at + 32);
    const entrySize = format === '1.16' ? 16 : 8;
    for (const [name, off] of [['funcname', funcnameOffset], ['pctab', pctabOffset], ['functab', functabOffset + (nfunc + 1) * entrySize]] as const) {
      if (off > tab.length) throw new ElfError(`${path}: .gopclntab ${name} offset ${off} past its end (${tab.length})`);
    }
    return new GoPclntab(path, tab, format, quantum, nfunc, textStart, funcnameOffset, pctabOffset, functabOffset);
  }

  /** The functions of these names (full Go names: "crypto/tls.(*Conn).Read"). */
  find(names: ReadonlySet<string>): Map<string, GoFunction> {
    const wanted = [...names].map((n) => [n, Buffer.from(n + '\0', 'latin1')] as const);
    const out = new Map<string, GoFunction>();
    const { tab } = this;
    for (let i = 0; i < this.nfunc && out.size < wanted.length; i++) {
      const funcOffset = this.functabOffset + this.funcOff(i);
      if (funcOffset + 24 > tab.length) throw new ElfError(`${this.path}: .gopclntab function ${i} past the table's end`);
      const nameAt = this.funcnameOffset + tab.readInt32LE(funcOffset + (this.format === '1.16' ? 8 : 4));
      for (const [name, bytes] of wanted) {
        if (tab[nameAt] !== bytes[0] || nameAt < 0 || nameAt + bytes.length > tab.length || tab.compare(bytes, 0, bytes.length, nameAt, nameAt + bytes.length) !== 0) continue;
        const entry = this.entry(i);
        const end = this.entry(i + 1);
        const ownEntry = this.format === '1.16' ? tab.readBigUInt64LE(funcOffset) : this.textStart + BigInt(tab.readUInt32LE(funcOffset));
        if (ownEntry !== entry || end <= entry) throw new ElfError(`${this.path}: .gopclntab entry of ${name} inconsistent`);
        out.set(name, { name, entry, end, funcOffset });
      }
    }
    return out;
  }

  /** The function's SP-delta table as ranges, in address order. */
  spRanges(fn: GoFunction): SpRange[] {
    const { tab } = this;
    const pcsp = tab.readUInt32LE(fn.funcOffset + (this.format === '1.16' ? 20 : 16));
    let p = this.pctabOffset + pcsp;
    const out: SpRange[] = [];
    let pc = fn.entry;
    let val = -1;
    for (let first = true; ; first = false) {
      if (p >= tab.length) throw new ElfError(`${this.path}: pcsp table of ${fn.name} runs past the pclntab`);
      let [uv, n] = uvarint(tab, p, this.path);
      if (uv === 0 && !first) break;
      p += n;
      val += (uv & 1) !== 0 ? -((uv + 1) / 2) : uv / 2;
      const [pcDelta, m] = uvarint(tab, p, this.path);
      p += m;
      const next = pc + BigInt(pcDelta * this.quantum);
      if (next > fn.end) throw new ElfError(`${this.path}: pcsp table of ${fn.name} runs past its end`);
      out.push({ start: pc, end: next, delta: val });
      pc = next;
      if (out.length > 1_000_000) throw new ElfError(`${this.path}: pcsp table of ${fn.name} too long`);
    }
    return out;
  }

  private funcOff(i: number): number {
    const at = this.functabOffset + i * (this.format === '1.16' ? 16 : 8);
    return this.format === '1.16' ? Number(this.tab.readBigUInt64LE(at + 8)) : this.tab.readUInt32LE(at + 4);
  }

  private entry(i: number): bigint {
    const at = this.functabOffset + i * (this.format === '1.16' ? 16 : 8);
    return this.format === '1.16' ? this.tab.readBigUInt64LE(at) : this.textStart + BigInt(this.tab.readUInt32LE(at));
  }
}

/**
 * The virtual addresses of fn's return instructions (amd64): each start of
 * a range where the frame is gone again after the prologue built it, whose
 * first instruction after one-byte NOPs is RET (a NOP is a whole
 * instruction, so the RET is at a boundary too). Ranges at delta 0 that start with anything else (the
 * stack-growth call at the end, which spills the arguments) are not returns.
 */
export function amd64Returns(elf: ElfFile, tab: GoPclntab, fn: GoFunction): bigint[] {
  const size = Number(fn.end - fn.entry);
  if (size > MAX_FUNCTION_BYTES) throw new ElfError(`${fn.name} is ${size} bytes long: not read`);
  const code = elf.readVirtual(fn.entry, size, fn.name);
  const out: bigint[] = [];
  let framed = false;
  for (const r of tab.spRanges(fn)) {
    if (r.delta !== 0) {
      framed = true;
      continue;
    }
    if (!framed) continue;
    // The linker may pad before the RET with one-byte NOPs (a line-table boundary).
    let at = Number(r.start - fn.entry);
    const end = Number(r.end - fn.entry);
    while (at < end && code[at] === X86_NOP) at++;
    if (at < end && code[at] === X86_RET) out.push(fn.entry + BigInt(at));
  }
  return out;
}

function uvarint(b: Buffer, at: number, path: string): [number, number] {
  let x = 0;
  for (let i = 0; i < 5; i++) {
    if (at + i >= b.length) break;
    const c = b[at + i]!;
    x += (c & 0x7f) * 2 ** (7 * i);
    if (c < 0x80) return [x, i + 1];
  }
  throw new ElfError(`${path}: bad varint in .gopclntab at ${at}`);
}
