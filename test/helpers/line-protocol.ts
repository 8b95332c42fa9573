// A tiny line protocol ("REQ name\n" answered by "RES code\n") for testing the
// correlate layer without any real protocol. Gaps drop the in-flight line.
// "GONE\n" on the response side gives up the oldest pending request (as a
// real protocol's resync would): requestAbandoned, no record.

import {
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolDefinition,
  type ProtocolSession,
  type SessionObserver,
  type Side,
} from '../../src/protocols/types';

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');

export const lineProtocol: ProtocolDefinition = {
  id: 'line',
  networkProtocolName: 'line',
  maxDetectBytes: 4,
  instruments: [],
  detect(side, data) {
    const head = data.subarray(0, 4).toString('latin1');
    if (head === 'REQ ') return { result: 'match', requestSide: side };
    if (head === 'RES ') return { result: 'match', requestSide: other(side) };
    if ('REQ '.startsWith(head) || 'RES '.startsWith(head)) return { result: 'more' };
    return { result: 'no' };
  },
  createSession(conn: ConnectionInfo, requestSide: Side, _options, observer?: SessionObserver): ProtocolSession {
    const partial: Record<Side, string> = { egress: '', ingress: '' };
    const pending: { name: string; startNs: number; seq: number }[] = [];
    let started = 0;
    const base: Record<Side, number> = { egress: 0, ingress: 0 };
    const stats = newProtocolStats();
    const emit = (out: L7Record[], req: { name: string; startNs: number; seq: number }, endNs: number, code: string | undefined) => {
      stats.records++;
      out.push({
        protocol: 'line',
        kind: requestSide === 'ingress' ? 'server' : 'client',
        connId: conn.connId,
        tgid: conn.tgid,
        startNs: req.startNs,
        endNs,
        name: req.name,
        attributes: code === undefined ? {} : { code },
        status: code === undefined || code !== 'ok' ? 'error' : 'unset',
        sequence: req.seq,
        measurements: [],
      });
    };
    return {
      stats,
      onChunk(c: Chunk, out: L7Record[]) {
        if (partial[c.side] === '') base[c.side] = c.pos;
        partial[c.side] += c.data.toString('latin1');
        let nl: number;
        while ((nl = partial[c.side].indexOf('\n')) >= 0) {
          const line = partial[c.side].slice(0, nl);
          partial[c.side] = partial[c.side].slice(nl + 1);
          const pos = base[c.side];
          base[c.side] += nl + 1;
          if (c.side === requestSide && line.startsWith('REQ ')) {
            const s = started++;
            pending.push({ name: line.slice(4), startNs: c.startNs, seq: s });
            observer?.requestStarted({ sequence: s, pos, startNs: c.startNs, tid: c.tid ?? 0 });
          }
          else if (c.side !== requestSide && line === 'GONE') {
            const req = pending.shift();
            if (req) observer?.requestAbandoned(req.seq, c.endNs);
          } else if (c.side !== requestSide && line.startsWith('RES ')) {
            const req = pending.shift();
            if (req) emit(out, req, c.endNs, line.slice(4));
            else stats.unpairedResponses++;
          } else stats.parseErrors++;
        }
      },
      onGap(side, pos, bytes) {
        partial[side] = '';
        base[side] = pos + bytes;
      },
      expire(nowNs, timeoutNs, out) {
        while (pending.length > 0 && nowNs - pending[0]!.startNs > timeoutNs) {
          stats.requestsWithoutResponse++;
          emit(out, pending.shift()!, nowNs, undefined);
        }
      },
      close(atNs, out) {
        while (pending.length > 0) {
          stats.requestsWithoutResponse++;
          emit(out, pending.shift()!, atNs, undefined);
        }
      },
      dispose() {
        pending.length = 0;
      },
      bufferedBytes: () => partial.egress.length + partial.ingress.length,
    };
  },
};
