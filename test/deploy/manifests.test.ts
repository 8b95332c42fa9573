// Every Kubernetes manifest under deploy/ validates against the Kubernetes
// OpenAPI schema (kubernetes-models), and keeps the agent to the capability
// set the least-privilege test proves (no privileged mode, no SYS_ADMIN on the
// agent's container). The sidecar's pod shape (shared pid namespace, probes,
// downward API, tracefs) is checked field by field.

import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/agent';

const DIR = path.join(ROOT, 'deploy', 'kubernetes');

// kubernetes-models: one class per kind, with validate() against the schema.
const KINDS: Record<string, string> = {
  'apps/v1/DaemonSet': 'kubernetes-models/apps/v1/DaemonSet',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'v1/Pod': 'kubernetes-models/v1/Pod',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Service': 'kubernetes-models/v1/Service',
};

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: { template?: { spec: PodSpec } } & Partial<PodSpec>;
}
interface Container {
  name: string;
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
}

function documents(): { file: string; doc: Doc }[] {
  const out: { file: string; doc: Doc }[] = [];
  for (const f of fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(DIR, f), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${f}: ${d.errors[0]!.message}`);
      out.push({ file: f, doc: d.toJS() as Doc });
    }
  }
  return out;
}

test('there are manifests, each of a kind we validate', (t) => {
  const docs = documents();
  t.true(docs.length > 0);
  for (const { file, doc } of docs) t.truthy(KINDS[`${doc.apiVersion}/${doc.kind}`], `${file}: ${doc.apiVersion} ${doc.kind}`);
});

for (const { file, doc } of documents()) {
  test(`${file} ${doc.kind}/${doc.metadata.name} validates against the Kubernetes schema`, (t) => {
    const mod = require(KINDS[`${doc.apiVersion}/${doc.kind}`]!) as Record<string, new (o: unknown) => { validate(): void }>;
    const Model = mod[doc.kind]!;
    t.notThrows(() => new Model(doc).validate());
  });
}

test('the schema check can fail: a wrong type and a missing selector are caught', (t) => {
  const { DaemonSet } = require('kubernetes-models/apps/v1/DaemonSet') as { DaemonSet: new (o: unknown) => { validate(): void } };
  const ds = documents().find((d) => d.doc.kind === 'DaemonSet')!.doc;
  const broken = JSON.parse(JSON.stringify(ds)) as { spec: { selector?: unknown; template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
  delete broken.spec.selector;
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'ninety';
  const e = t.throws(() => new DaemonSet(broken).validate());
  t.regex(e!.message, /selector/);
  t.regex(e!.message, /containerPort/);
});

test('the agent container holds exactly BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH, drops the rest, is not privileged', (t) => {
  for (const { file, doc } of documents()) {
    const pod = doc.spec?.template?.spec;
    if (!pod) continue;
    const agent = pod.containers.find((c) => c.name === 'ebpf-otel');
    t.truthy(agent, file);
    t.deepEqual([...(agent!.securityContext?.capabilities?.add ?? [])].sort(), ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_PTRACE'], file);
    t.deepEqual(agent!.securityContext?.capabilities?.drop, ['ALL'], file);
    t.false(agent!.securityContext?.privileged ?? false, file);
  }
});

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface FullContainer extends Container {
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Container['securityContext'] & { runAsUser?: number; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
}
interface FullPodSpec {
  containers: FullContainer[];
  shareProcessNamespace?: boolean;
  hostPID?: boolean;
  hostNetwork?: boolean;
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
}

function podOf(file: string): FullPodSpec {
  const found = documents().filter((d) => d.file === file);
  if (found.length !== 1) throw new Error(`${file}: ${found.length} documents`);
  return found[0]!.doc.spec!.template!.spec as unknown as FullPodSpec;
}

/** The node tracefs as a container sees it: its volume and its mount. */
function tracefs(pod: FullPodSpec, c: FullContainer) {
  const mount = c.volumeMounts?.find((m) => m.mountPath === '/sys/kernel/tracing');
  return { mount, volume: pod.volumes?.find((v) => v.name === mount?.name) };
}

test('sidecar.yaml: one pid namespace for the pod, no hostPID; the agent traces it (`run --all`) as uid 0, read-only, unescalated', (t) => {
  const pod = podOf('sidecar.yaml');
  t.true(pod.shareProcessNamespace);
  t.falsy(pod.hostPID, 'the pod namespace, not the node');
  t.falsy(pod.hostNetwork);
  t.deepEqual(pod.containers.map((c) => c.name), ['app', 'ebpf-otel']);
  const agent = pod.containers.find((c) => c.name === 'ebpf-otel')!;
  t.deepEqual(agent.args, ['run', '--all', '--health-listen', '0.0.0.0:9464']);
  t.like(agent.securityContext, { runAsUser: 0, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  for (const c of pod.containers) {
    t.false(c.securityContext?.capabilities?.add?.includes('SYS_ADMIN') ?? false, c.name);
    t.false(c.securityContext?.privileged ?? false, c.name);
    t.truthy(c.resources?.requests?.['cpu'], `${c.name} cpu request`);
    t.truthy(c.resources?.requests?.['memory'], `${c.name} memory request`);
    t.truthy(c.resources?.limits?.['memory'], `${c.name} memory limit`);
  }
  // The node's tracefs, exactly as the DaemonSet mounts it: read-only, no mount privilege needed.
  const ds = podOf('daemonset.yaml');
  const dsAgent = ds.containers.find((c) => c.name === 'ebpf-otel')!;
  t.deepEqual(tracefs(pod, agent), tracefs(ds, dsAgent));
  t.like(tracefs(pod, agent), { mount: { readOnly: true }, volume: { hostPath: { path: '/sys/kernel/tracing', type: 'Directory' } } });
});

test('sidecar.yaml: /healthz probes on the --health-listen port; the downward API names the pod; the endpoint is marked', (t) => {
  const pod = podOf('sidecar.yaml');
  const agent = pod.containers.find((c) => c.name === 'ebpf-otel')!;
  const app = pod.containers.find((c) => c.name !== 'ebpf-otel')!;
  const healthPort = Number(agent.args![agent.args!.indexOf('--health-listen') + 1]!.split(':')[1]);
  for (const probe of [agent.readinessProbe, agent.livenessProbe]) {
    t.is(probe?.httpGet?.path, '/healthz');
    const port = probe!.httpGet!.port;
    t.is(typeof port === 'number' ? port : agent.ports!.find((p) => p.name === port)?.containerPort, healthPort);
  }
  const env = Object.fromEntries(agent.env!.map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]));
  t.deepEqual(env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    K8S_POD_NAME: 'fieldRef:metadata.name',
    K8S_NAMESPACE_NAME: 'fieldRef:metadata.namespace',
    K8S_POD_UID: 'fieldRef:metadata.uid',
    K8S_NODE_NAME: 'fieldRef:spec.nodeName',
    K8S_CONTAINER_NAME: app.name,
  });
  const raw = fs.readFileSync(path.join(DIR, 'sidecar.yaml'), 'utf8');
  t.regex(raw, /# CHANGE[^\n]*\n\s*- name: OTEL_EXPORTER_OTLP_ENDPOINT\n/, 'the one value to change is marked');
  t.is(raw.match(/# CHANGE/g)?.length, 1);
});
