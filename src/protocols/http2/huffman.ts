// HPACK Huffman decoding (RFC 7541 §5.2, code in Appendix B), one input
// byte per table lookup.
//
// The Appendix B code is canonical: codes of one length are consecutive
// integers in symbol order, and the first code of each length follows the
// last code of the length before it, shifted. So the lengths alone define it
// (the test checks every code against the appendix). From them a decoding
// state machine is built once at module load: a state is an internal node of
// the code tree (256 of them for 257 symbols), and each (state, byte) entry
// says which symbols the byte completes (at most two: the shortest code is 5
// bits) and the node the byte ends on.

/** Code length in bits of symbols 0..255 and EOS (256), Appendix B. */
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240
  30, // 256: EOS
];

const EOS = 256;

/** Codes of Appendix B (MSB-aligned values of CODE_LENGTHS[sym] bits), from the canonical rule. */
export const HUFFMAN_CODES: readonly number[] = canonicalCodes(CODE_LENGTHS);
export const HUFFMAN_CODE_LENGTHS: readonly number[] = CODE_LENGTHS;

function canonicalCodes(lengths: readonly number[]): number[] {
  const order = lengths.map((_, sym) => sym).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const codes = new Array<number>(lengths.length).fill(0);
  let code = 0;
  let prevLength = lengths[order[0]!]!;
  for (let i = 0; i < order.length; i++) {
    const sym = order[i]!;
    const len = lengths[sym]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prevLength);
    prevLength = len;
    codes[sym] = code;
  }
  return codes;
}

// Entry layout of the transition table (Uint32):
//   bits 0-7   next state
//   bits 8-15  first symbol completed by the byte
//   bits 16-23 second symbol
//   bits 24-25 how many symbols the byte completed (0..2)
//   bit 26     the byte completes EOS, or runs into a path no code has: an error
const FAIL = 1 << 26;

interface Tables {
  readonly transitions: Uint32Array;
  /** 1 where input may end: the bits since the last symbol are all ones and fewer than 8 (§5.2). */
  readonly accepting: Uint8Array;
}

function buildTables(): Tables {
  // The code tree: node 0 is the root; children[2n + bit] is the child of
  // node n: an internal node (> 0; the root is nobody's child, so 0 means
  // none yet) or a leaf as -1 - symbol.
  const children = new Int32Array(2 * 256);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = CODE_LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let b = len - 1; b > 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      let next = children[2 * node + bit]!;
      if (next === 0) {
        if (nodes === 256) throw new Error('HPACK Huffman code is not a prefix code');
        next = nodes++;
        children[2 * node + bit] = next;
        depth[next] = depth[node]! + 1;
        allOnes[next] = allOnes[node]! & bit;
      }
      node = next;
    }
    children[2 * node + (code & 1)] = -1 - sym;
  }
  if (nodes !== 256) throw new Error(`HPACK Huffman tree has ${nodes} internal nodes, expected 256`);

  const transitions = new Uint32Array(256 * 256);
  const accepting = new Uint8Array(256);
  for (let state = 0; state < 256; state++) {
    accepting[state] = allOnes[state] === 1 && depth[state]! < 8 ? 1 : 0;
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let count = 0;
      let syms = 0;
      let fail = false;
      for (let b = 7; b >= 0; b--) {
        const child = children[2 * node + ((byte >> b) & 1)]!;
        if (child > 0) { node = child; continue; }
        const sym = -1 - child;
        if (sym === EOS) { fail = true; break; }
        syms |= sym << (8 * count);
        count++;
        node = 0;
      }
      transitions[(state << 8) | byte] = fail ? FAIL : (node | (syms << 8) | (count << 24)) >>> 0;
    }
  }
  return { transitions, accepting };
}

const { transitions: TRANSITIONS, accepting: ACCEPTING } = buildTables();

/** The input holds EOS, or ends in padding that is not 0-7 one bits (§5.2). */
export const HUFFMAN_INVALID = -1;

/**
 * Decodes `src[start, end)`. Writes at most `dst.length` octets to `dst`
 * (none when dst is null) and returns the decoded length, counting what did
 * not fit, or HUFFMAN_INVALID. Never throws.
 */
export function decodeHuffman(src: Uint8Array, start: number, end: number, dst: Uint8Array | null): number {
  const cap = dst === null ? 0 : dst.length;
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const t = TRANSITIONS[(state << 8) | src[i]!]!;
    if ((t & FAIL) !== 0) return HUFFMAN_INVALID;
    const count = t >>> 24;
    if (count !== 0) {
      if (n < cap) dst![n] = (t >>> 8) & 0xff;
      n++;
      if (count === 2) {
        if (n < cap) dst![n] = (t >>> 16) & 0xff;
        n++;
      }
    }
    state = t & 0xff;
  }
  return ACCEPTING[state] === 1 ? n : HUFFMAN_INVALID;
}
