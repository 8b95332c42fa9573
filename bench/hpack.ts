// What decoding one gRPC request header block costs (src/protocols/http2/hpack.ts),
// with the blocks a grpc-js client (nghttp2) sends: Huffman strings,
// incremental indexing of everything but the per-call values.
//
//   node dist/bench/hpack.js [--seconds 2] [--rounds 5]
//
// Arms, each over --seconds per round, medians over rounds:
//   warm:   a call on a channel already used (57 octets): :method and
//           :scheme from the static table, 7 dynamic-table references, two
//           Huffman literals with indexing (grpc-timeout, traceparent) on a
//           decoder whose table holds the channel's entries (see below);
//   first:  the first call on a channel (187 octets): a new decoder, 9 Huffman literals.
//   huffman: decodeHuffman alone over the warm block's traceparent value.
// The blocks are built once, up front, by the tests' RFC 7541 encoder.

import { parseArgs } from 'node:util';
import { HpackDecoder, HpackFieldList } from '../src/protocols/http2/hpack';
import { decodeHuffman } from '../src/protocols/http2/huffman';
import { encodeString, indexed, literal } from '../test/protocols/http2/hpack-encoder';
import { positive, runMain } from './main';

const FIRST: readonly [string, string][] = [
  [':path', '/helloworld.Greeter/SayHello'],
  [':authority', 'localhost:50051'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
  ['user-agent', 'grpc-node-js/1.12.6'],
  ['grpc-accept-encoding', 'identity,deflate,gzip'],
  ['accept-encoding', 'identity,gzip'],
];

function traceparent(i: number): string {
  return `00-${(0x4bf92f35 + i).toString(16).padStart(32, '0')}-${(0x00f067aa + i).toString(16).padStart(16, '0')}-01`;
}

/** The first call: :method POST and :scheme http from the static table, the rest literals with indexing. */
function firstBlock(): Buffer {
  const staticName: Record<string, number> = { ':path': 4, ':authority': 1, 'content-type': 31, 'user-agent': 58, 'accept-encoding': 16 };
  const parts = [indexed(3), indexed(6)];
  for (const [n, v] of FIRST) parts.push(literal('incremental', staticName[n] ?? n, v, true));
  parts.push(literal('incremental', 'grpc-timeout', '99982m', true), literal('incremental', 'traceparent', traceparent(0), true));
  return Buffer.from(parts.flat());
}

/**
 * Call i + 1 on the channel, after `firstBlock` and i warm calls: the first
 * block's 9 insertions are entries 62..70 (newest first: traceparent,
 * grpc-timeout, then FIRST reversed), each warm call put two more in front.
 * The same fields by index, new values for the last two with their names
 * indexed.
 */
function warmBlock(i: number): Buffer {
  const shift = 2 * i;
  const parts = [indexed(3), indexed(6)];
  for (let k = 0; k < FIRST.length; k++) parts.push(indexed(62 + shift + 2 + (FIRST.length - 1 - k)));
  parts.push(literal('incremental', 62 + shift + 1, `${99000 + i}m`, true), literal('incremental', 62 + shift + 1, traceparent(i + 1), true));
  return Buffer.from(parts.flat());
}

interface Arm {
  readonly name: string;
  /** Runs `n` operations. */
  run(n: number): void;
}

function measure(arm: Arm, seconds: number): number {
  let n = 1000;
  let ops = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < until) {
    arm.run(n);
    ops += n;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '5' } } });
  const seconds = positive('--seconds', values.seconds!);
  const rounds = positive('--rounds', values.rounds!);
  const first = firstBlock();
  // A channel's decoder is made anew every 16 calls (then primed with the
  // first call), so every index stays valid (16 calls of two ~75-octet
  // entries fit in 4096 beside the channel's); that costs 1/16 of a
  // first-call decode per call, counted in the warm figure.
  const warmBlocks = Array.from({ length: 16 }, (_, i) => warmBlock(i));
  const list = new HpackFieldList();

  // Check the blocks say what they should before timing them.
  const check = new HpackDecoder();
  if (check.decode(first, list) !== 'ok' || list.count !== 11) throw new Error('first block does not decode');
  for (let i = 0; i < 16; i++) {
    if (check.decode(warmBlocks[i]!, list) !== 'ok' || list.count !== 11 || list.names[2] !== ':path'
      || list.values[2] !== '/helloworld.Greeter/SayHello' || list.values[10] !== traceparent(i + 1)) {
      throw new Error(`warm block ${i} does not decode to the call`);
    }
  }
  let warmDecoder = new HpackDecoder();
  const tp = Buffer.from(encodeString(traceparent(1), true).slice(1));
  const out = Buffer.alloc(128);
  const arms: Arm[] = [
    {
      name: 'warm',
      run(n) {
        for (let i = 0; i < n; i++) {
          const k = i & 15;
          if (k === 0) {
            warmDecoder = new HpackDecoder();
            warmDecoder.decode(first, list);
          }
          if (warmDecoder.decode(warmBlocks[k]!, list) !== 'ok') throw new Error('warm decode failed');
        }
      },
    },
    {
      name: 'first',
      run(n) {
        for (let i = 0; i < n; i++) if (new HpackDecoder().decode(first, list) !== 'ok') throw new Error('first decode failed');
      },
    },
    {
      name: 'huffman',
      run(n) {
        for (let i = 0; i < n; i++) decodeHuffman(tp, 0, tp.length, out);
      },
    },
  ];
  const results: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const arm of arms) (results[arm.name] ??= []).push(measure(arm, seconds));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const report = {
    firstBlockBytes: first.length,
    warmBlockBytes: warmBlocks[0]!.length,
    traceparentHuffmanBytes: tp.length,
    warmDecodesPerSecond: Math.round(median(results['warm']!)),
    firstDecodesPerSecond: Math.round(median(results['first']!)),
    huffmanTraceparentPerSecond: Math.round(median(results['huffman']!)),
    huffmanMBPerSecond: Number(((median(results['huffman']!) * tp.length) / 1e6).toFixed(1)),
    rounds: results,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

runMain(main);
