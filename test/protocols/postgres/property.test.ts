// Property tests: arbitrary bytes and arbitrary sequences of real messages on
// either side, cut anywhere, with gaps, expiries and a close, from the start
// or joined mid-stream, never throw, keep every started request ending
// exactly once, keep bufferedBytes() bounded and never put a Bind parameter
// or a password into a record.

import test from 'ava';
import fc from 'fast-check';
import { PgSession, PG_MAX_QUERY_BYTES } from '../../../src/protocols/postgres/session';
import { PG_HUNT_MAX_BYTES, PG_TAIL_WINDOW } from '../../../src/protocols/postgres/reader';
import type { ConnectionInfo, L7Record, RequestStarted, Side } from '../../../src/protocols/types';
import { observerViolations } from '../../helpers/protocol-replay';
import { back, front } from './messages';

const conn = (sawStart: boolean): ConnectionInfo => ({
  connId: 9, tgid: 9, role: 'client', sawStart, encrypted: false, transport: 'tcp',
  localAddr: '10.0.0.2', localPort: 40000, remoteAddr: '10.0.0.1', remotePort: 5432,
});

const PARAM = 'param-9f3e';
const PASSWORD = 'pw-77c1';

const FRONT = [
  front.startup({ user: 'u', database: 'd' }),
  front.sslRequest(),
  front.password(PASSWORD),
  front.query('SELECT 1'),
  front.query("INSERT INTO t VALUES ('x')"),
  front.parse('s1', 'SELECT $1'),
  front.parse('', 'UPDATE t SET a = $1'),
  front.bind('', 's1', [PARAM]),
  front.bind('p1', '', [PARAM, null]),
  front.describe('P', ''),
  front.describe('S', 's1'),
  front.execute(''),
  front.execute('p1', 2),
  front.close('S', 's1'),
  front.sync(),
  front.flush(),
  front.terminate(),
];

const BACK = [
  back.authOk(),
  back.authCleartext(),
  back.parameterStatus('server_version', '15'),
  back.backendKeyData(1, 2),
  back.ready(),
  back.ready('T'),
  back.parseComplete(),
  back.bindComplete(),
  back.closeComplete(),
  back.noData(),
  back.rowDescription(['a']),
  back.dataRow(['1']),
  back.commandComplete('SELECT 1'),
  back.commandComplete('INSERT 0 1'),
  back.error('42601', 'syntax error'),
  back.notice('n'),
  back.answer('N'),
  back.answer('S'),
];

interface Step {
  readonly side: Side;
  readonly data: Buffer;
  readonly cut: number;
  readonly gap: number;
  readonly expire: boolean;
}

const bytesOf = (side: Side) =>
  fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((u) => Buffer.from(u)),
    fc.array(fc.constantFrom(...(side === 'egress' ? FRONT : BACK)), { minLength: 1, maxLength: 6 }).map((m) => Buffer.concat(m)),
  );

const step: fc.Arbitrary<Step> = fc.constantFrom<Side>('egress', 'ingress').chain((side) =>
  fc.record({
    side: fc.constant(side),
    data: bytesOf(side),
    cut: fc.nat({ max: 64 }),
    gap: fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 200 })),
    expire: fc.boolean(),
  }),
);

/** Held at most: a hunt's candidate or a tail window per side, a kept text, statements' texts (small here), a message being kept. */
const BOUND = 2 * (PG_HUNT_MAX_BYTES + PG_TAIL_WINDOW + 64) + PG_MAX_QUERY_BYTES + 64 * 1024;

test('arbitrary traffic never throws, ends every started request once, stays bounded, records no parameter or password', (t) => {
  fc.assert(
    fc.property(fc.boolean(), fc.array(step, { maxLength: 40 }), (sawStart, steps) => {
      const starts: RequestStarted[] = [];
      const abandons: [number, number][] = [];
      const records: L7Record[] = [];
      const s = new PgSession(conn(sawStart), 'egress', { queryText: 'raw' }, {
        requestStarted: (r) => starts.push(r),
        requestAbandoned: (seq, at) => abandons.push([seq, at]),
        protocolSwitched: () => {},
      });
      const pos: Record<Side, number> = { egress: 0, ingress: 0 };
      let now = 1000;
      for (const st of steps) {
        now += 1000;
        const cut = Math.min(st.cut, st.data.length);
        const pieces = cut > 0 && cut < st.data.length ? [st.data.subarray(0, cut), st.data.subarray(cut)] : [st.data];
        pieces.forEach((p, i) => {
          s.onChunk({ side: st.side, data: p, pos: pos[st.side], startNs: now, endNs: now + 5, syscallStart: i === 0 }, records);
          pos[st.side] += p.length;
        });
        if (st.gap > 0) {
          s.onGap(st.side, pos[st.side], st.gap, now + 6, records);
          pos[st.side] += st.gap;
        }
        if (st.expire) s.expire(now + 7, 500, records);
        if (s.bufferedBytes() > BOUND) return false;
      }
      s.close(now + 10_000, records);
      const text = JSON.stringify(records);
      if (text.includes(PARAM) || text.includes(PASSWORD)) return false;
      return observerViolations(starts, records, abandons).length === 0;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
