// The agent's local health endpoint, for container probes and Prometheus:
//   GET /healthz  200 "ok" once every probe is attached; 503 before, and once shutdown began
//   GET /metrics  the agent's own ebpf_otel.* metrics in the Prometheus text format (0.0.4)
// Bound to the address given (a sidecar uses 127.0.0.1 or the pod IP); nothing
// else is served. Names follow the OpenTelemetry-to-Prometheus rules: dots to
// underscores, a unit suffix (By -> _bytes), counters end in _total.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentHealth, AgentMetric } from '../otel/metrics';

export type HealthState = 'starting' | 'ready' | 'stopping';

export class HealthServer {
  state: HealthState = 'starting';
  private readonly server: http.Server;

  constructor(
    private readonly metrics: readonly AgentMetric[],
    private readonly snapshot: () => AgentHealth,
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    // A probe that hangs must not hold the agent's shutdown.
    this.server.keepAliveTimeout = 1000;
  }

  /** Listens on host:port (port 0: any free port); resolves with the address bound. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.state = 'stopping';
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (url === '/healthz') {
      const ok = this.state === 'ready';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(ok ? 'ok\n' : `${this.state}\n`);
    } else if (url === '/metrics') {
      let body: string;
      try {
        body = prometheusText(this.metrics, this.snapshot());
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    }
  }
}

const UNIT_SUFFIX: Record<string, string> = { By: '_bytes', s: '_seconds' };

/** The Prometheus name of an agent metric. */
export function prometheusName(name: string, unit: string, kind: 'counter' | 'gauge'): string {
  let n = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  const suffix = UNIT_SUFFIX[unit];
  if (suffix !== undefined && !n.endsWith(suffix)) n += suffix;
  return kind === 'counter' ? `${n}_total` : n;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The snapshot in the Prometheus text exposition format; fields the snapshot lacks are left out. */
export function prometheusText(metrics: readonly AgentMetric[], h: AgentHealth): string {
  const lines: string[] = [];
  for (const m of metrics) {
    const v = h[m.field];
    if (v === undefined) continue;
    const name = prometheusName(m.name, m.unit, m.kind);
    lines.push(`# HELP ${name} ${m.description.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    lines.push(`# TYPE ${name} ${m.kind}`);
    if (typeof v === 'number') lines.push(`${name} ${v}`);
    else if (m.attribute !== undefined) {
      const label = m.attribute.replace(/[^a-zA-Z0-9_]/g, '_');
      for (const [k, n] of Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) lines.push(`${name}{${label}="${labelValue(k)}"} ${n}`);
    }
  }
  return lines.join('\n') + '\n';
}
