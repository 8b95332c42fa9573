// A tiny line protocol ("REQ name\n" answered by "RES code\n") for testing the
// correlate layer without any real protocol. Gaps drop the in-flight line.

import {
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolDefinition,
  type ProtocolSession,
  type Side,
} from '../../src/protocols/types';

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');

export const lineProtocol: ProtocolDefinition = {
  id: 'line',
  maxDetectBytes: 4,
  detect(side, data) {
    const head = data.subarray(0, 4).toString('latin1');
    if (head === 'REQ ') return { result: 'match', requestSide: side };
    if (head === 'RES ') return { result: 'match', requestSide: other(side) };
    if ('REQ '.startsWith(head) || 'RES '.startsWith(head)) return { result: 'more' };
    return { result: 'no' };
  },
  createSession(conn: ConnectionInfo, requestSide: Side): ProtocolSession {
    const partial: Record<Side, string> = { egress: '', ingress: '' };
    const pending: { name: string; startNs: number }[] = [];
    let seq = 0;
    const stats = newProtocolStats();
    const emit = (out: L7Record[], req: { name: string; startNs: number }, endNs: number, code: string | undefined) => {
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
        sequence: seq++,
        measurements: [],
      });
    };
    return {
      stats,
      onChunk(c: Chunk, out: L7Record[]) {
        partial[c.side] += c.data.toString('latin1');
        let nl: number;
        while ((nl = partial[c.side].indexOf('\n')) >= 0) {
          const line = partial[c.side].slice(0, nl);
          partial[c.side] = partial[c.side].slice(nl + 1);
          if (c.side === requestSide && line.startsWith('REQ ')) pending.push({ name: line.slice(4), startNs: c.startNs });
          else if (c.side !== requestSide && line.startsWith('RES ')) {
            const req = pending.shift();
            if (req) emit(out, req, c.endNs, line.slice(4));
            else stats.unpairedResponses++;
          } else stats.parseErrors++;
        }
      },
      onGap(side) {
        partial[side] = '';
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
      bufferedBytes: () => partial.egress.length + partial.ingress.length,
    };
  },
};
