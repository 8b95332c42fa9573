// Random trace and span ids from a pooled buffer: one getrandom call per 4 KiB
// of ids instead of one per id.

import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(4096);
let offset = POOL.length;

function take(bytes: number): string {
  for (;;) {
    if (offset + bytes > POOL.length) {
      randomFillSync(POOL);
      offset = 0;
    }
    const start = offset;
    offset += bytes;
    // All-zero ids are invalid in W3C trace context; draw again (1 in 2^64).
    // Checked on the bytes: no regex over the hex per id.
    for (let i = start; i < offset; i++) if (POOL[i] !== 0) return POOL.toString('hex', start, offset);
  }
}

export const newTraceId = (): string => take(16);
export const newSpanId = (): string => take(8);
