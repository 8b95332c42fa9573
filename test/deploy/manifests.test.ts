// Every Kubernetes manifest under deploy/ validates against the Kubernetes
// OpenAPI schema (kubernetes-models), and keeps the agent to the capability
// set the least-privilege test proves (no privileged mode, no SYS_ADMIN on the
// agent's container).

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
