// Records and wiring shared by the OTel tests.

import * as net from 'node:net';
import type { L7Record, InstrumentSpec } from '../../src/protocols/types';
import type { TraceRecord } from '../../src/correlate/trace-record';
import type { Logger } from '../../src/util/log';

export const SERVER_DURATION: InstrumentSpec = {
  name: 'http.server.request.duration',
  unit: 's',
  description: 'Duration of HTTP server requests.',
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
};

export function l7(overrides: Partial<L7Record> = {}): L7Record {
  return {
    protocol: 'http1',
    kind: 'server',
    connId: 1,
    tgid: 4242,
    startNs: 1_000_000_000,
    endNs: 1_012_345_678,
    name: 'GET /users/:id',
    attributes: { 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 },
    status: 'unset',
    sequence: 0,
    measurements: [],
    ...overrides,
  };
}

let seq = 1;
export function hexId(bytes: number, n = seq++): string {
  return n.toString(16).padStart(bytes * 2, '0');
}

export function traceRecord(overrides: Partial<TraceRecord> = {}, record: Partial<L7Record> = {}): TraceRecord {
  return {
    record: l7(record),
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: hexId(8),
    sampled: true,
    process: { tgid: record.tgid ?? 4242 },
    ...overrides,
  };
}

/** A logger that keeps its lines. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const seen = new Set<string>();
  return {
    lines,
    debug: () => {},
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    warnOnce: (k, m) => {
      if (seen.has(k)) return;
      seen.add(k);
      lines.push(`warn: ${m}`);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A local TCP port nobody listens on (connections are refused at once). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
