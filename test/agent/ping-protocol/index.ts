// A small protocol that lives in the test tree, to prove that a protocol is
// one folder plus one registration: "PING name\n" answered by "PONG code\n".
// It declares a configuration section (`ping.error_codes`, flag
// --ping-error-code), an option its sessions use (which codes are errors)
// and a counter of its own (stray_lines: lines that are neither).

import { UsageError } from '../../../src/config/flags';
import { setting } from '../../../src/config/setting';
import { list, text } from '../../../src/config/shapes';
import {
  newProtocolStats,
  type CommonProtocolOptions,
  type L7Record,
  type ProtocolDefinition,
  type ProtocolSession,
  type Side,
} from '../../../src/protocols/types';

export interface PingOptions extends CommonProtocolOptions {
  /** PONG codes recorded as errors. */
  readonly errorCodes: readonly string[];
}

const codeProblem = (s: string) => (/^[A-Z0-9]{1,8}$/.test(s) ? undefined : `expected a code of 1 to 8 capitals or digits, got ${JSON.stringify(s)}`);

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');

export const pingProtocol: ProtocolDefinition<PingOptions> = {
  id: 'ping',
  networkProtocolName: 'ping',
  maxDetectBytes: 5,
  instruments: [],
  counters: [{ field: 'strayLines', name: 'stray_lines', unit: '{line}', description: 'Lines that are neither PING nor PONG, per protocol.' }],
  config: {
    section: 'ping',
    settings: {
      error_codes: setting(list(text('a code of capitals or digits', 'code', codeProblem)), 'PONG codes recorded as errors', { default: '[]', flags: ['--ping-error-code'] }),
    },
    flags: { 'ping-error-code': { type: 'string', multiple: true } },
    usage: ['  --ping-error-code CODE   a PONG code recorded as an error (repeatable)'],
    resolve(file, flags, common): PingOptions {
      const fromFlags = flags['ping-error-code'] as string[] | undefined;
      for (const c of fromFlags ?? []) {
        const problem = codeProblem(c);
        if (problem !== undefined) throw new UsageError(`--ping-error-code: ${problem}`);
      }
      return { ...common, errorCodes: fromFlags ?? (file as { error_codes?: string[] } | undefined)?.error_codes ?? [] };
    },
  },
  detect(side, data) {
    const head = data.subarray(0, 5).toString('latin1');
    if (head === 'PING ') return { result: 'match', requestSide: side };
    if (head === 'PONG ') return { result: 'match', requestSide: other(side) };
    return 'PING '.startsWith(head) || 'PONG '.startsWith(head) ? { result: 'more' } : { result: 'no' };
  },
  createSession(conn, requestSide, options, observer): ProtocolSession {
    const stats = newProtocolStats(pingProtocol.counters);
    const partial: Record<Side, string> = { egress: '', ingress: '' };
    const pending: { name: string; startNs: number; seq: number }[] = [];
    let started = 0;
    const record = (req: { name: string; startNs: number; seq: number }, endNs: number, code: string | undefined): L7Record => {
      stats.records++;
      const error = code === undefined || options.errorCodes.includes(code);
      return {
        protocol: 'ping',
        kind: requestSide === 'ingress' ? 'server' : 'client',
        connId: conn.connId,
        tgid: conn.tgid,
        startNs: req.startNs,
        endNs,
        name: `PING ${req.name}`,
        attributes: code === undefined ? {} : { 'ping.code': code },
        status: error ? 'error' : 'unset',
        ...(error ? { errorType: code ?? 'no_reply' } : {}),
        sequence: req.seq,
        measurements: [],
      };
    };
    return {
      stats,
      onChunk(c, out) {
        partial[c.side] += c.data.toString('latin1');
        let nl: number;
        while ((nl = partial[c.side].indexOf('\n')) >= 0) {
          const line = partial[c.side].slice(0, nl);
          partial[c.side] = partial[c.side].slice(nl + 1);
          if (c.side === requestSide && line.startsWith('PING ')) {
            const seq = started++;
            pending.push({ name: line.slice(5), startNs: c.startNs, seq });
            observer?.requestStarted({ sequence: seq, pos: c.pos, startNs: c.startNs, tid: c.tid ?? 0 });
          } else if (c.side !== requestSide && line.startsWith('PONG ') && pending.length > 0) {
            out.push(record(pending.shift()!, c.endNs, line.slice(5)));
          } else stats['strayLines']!++;
        }
      },
      onGap(side) {
        partial[side] = '';
      },
      expire() {},
      close(atNs, out) {
        for (const req of pending.splice(0)) {
          stats.requestsWithoutResponse++;
          out.push(record(req, atNs, undefined));
        }
      },
      dispose() {
        pending.length = 0;
      },
      bufferedBytes: () => partial.egress.length + partial.ingress.length,
    };
  },
};
