import test from 'ava';
import { ProcFs } from '../../src/util/procfs';
import {
  ATTR,
  ProcessResources,
  containerIdFromCgroups,
  parseResourceAttributes,
  podUidFromCgroups,
  readStartTimeTicks,
  runtimeName,
  scriptName,
  uuidV5,
} from '../../src/otel/resource';
import { FakeProc, type FakeProcess } from '../helpers/fake-proc';

const CID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);
const POD = '3f9a1b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const BOOT = 1_700_000_000;

function setup(t: { teardown(fn: () => void): void }) {
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  fp.writeFile('proc/stat', `cpu  1 2 3\nbtime ${BOOT}\nprocesses 9\n`);
  const add = (p: FakeProcess & { start?: number; comm?: string }) => {
    fp.add(p);
    if (p.start !== undefined) {
      const fields = ['S', ...Array<string>(18).fill('0'), String(p.start), '0', '0'];
      fp.writeFile(`proc/${p.pid}/stat`, `${p.pid} (${p.comm ?? 'x) y'}) ${fields.join(' ')}\n`);
    }
  };
  const resources = (opts: Partial<ConstructorParameters<typeof ProcessResources>[0]> = {}) =>
    new ProcessResources({
      procfs: new ProcFs(fp.proc),
      agentEnv: {},
      hostName: 'node-1',
      distroVersion: '1.2.3',
      randomUuid: () => 'random-uuid',
      ...opts,
    });
  return { fp, add, resources };
}

test('attribute names are the semantic conventions ones', (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sc = require('@opentelemetry/semantic-conventions/incubating') as Record<string, string>;
  for (const [k, v] of Object.entries(ATTR)) t.is(sc[`ATTR_${k}`] as string, v, k);
});

test('OTEL_SERVICE_NAME wins, other OTEL_RESOURCE_ATTRIBUTES pairs are kept and decoded', (t) => {
  const { add, resources } = setup(t);
  add({
    pid: 100,
    start: 5000,
    exe: '/usr/bin/python3.11',
    cmdline: ['python3', 'app.py'],
    env: {
      OTEL_SERVICE_NAME: 'checkout',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,deployment.environment.name=prod,team=a%2Cb%3Dc,service.version=1.0',
    },
  });
  const a = resources().resourceFor({ tgid: 100 }).attributes;
  t.is(a[ATTR.SERVICE_NAME], 'checkout');
  t.is(a['deployment.environment.name'], 'prod');
  t.is(a['team'], 'a,b=c');
  t.is(a['service.version'], '1.0');
  t.is(a[ATTR.PROCESS_PID], 100);
  t.is(a[ATTR.PROCESS_EXECUTABLE_NAME], 'python3.11');
  t.regex(String(a[ATTR.PROCESS_EXECUTABLE_PATH]), /\/usr\/bin\/python3\.11$/);
  t.is(a[ATTR.PROCESS_RUNTIME_NAME], 'cpython');
  t.is(a[ATTR.HOST_NAME], 'node-1');
  t.is(a[ATTR.TELEMETRY_DISTRO_NAME], 'ebpf-otel-sidecar');
  t.is(a[ATTR.TELEMETRY_DISTRO_VERSION], '1.2.3');
  t.is(a[ATTR.PROCESS_COMMAND_ARGS], undefined, 'command args are opt-in');
  t.is(a[ATTR.PROCESS_CREATION_TIME], new Date((BOOT + 50) * 1000).toISOString());
});

test('service.name from OTEL_RESOURCE_ATTRIBUTES, then the script, then the executable', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 1, start: 1, exe: '/usr/bin/python3', cmdline: ['python3'], env: { OTEL_RESOURCE_ATTRIBUTES: 'service.name=billing' } });
  add({ pid: 2, start: 1, exe: '/usr/bin/python3.12', cmdline: ['python3', '-u', '/srv/app.py', '--port', '80'] });
  add({ pid: 3, start: 1, exe: '/usr/local/bin/node', cmdline: ['node', '--require', 'otel.js', '--max-old-space-size=512', 'server.js'] });
  add({ pid: 4, start: 1, exe: '/opt/bin/myserver', cmdline: ['myserver', '-c', 'x.conf'] });
  add({ pid: 5, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', '-m', 'flask', 'run'] });
  add({ pid: 6, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', '-c', 'print(1)'] });
  add({ pid: 7, start: 1, exe: '/usr/bin/node', cmdline: ['node', '-e', 'x'] });
  add({ pid: 8, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', '-X', 'dev', 'worker.py'], env: { OTEL_RESOURCE_ATTRIBUTES: 'bad' } });
  const r = resources();
  const name = (pid: number) => r.resourceFor({ tgid: pid }).attributes[ATTR.SERVICE_NAME];
  t.is(name(1), 'billing');
  t.is(name(2), 'app');
  t.is(name(3), 'server');
  t.is(r.resourceFor({ tgid: 3 }).attributes[ATTR.PROCESS_RUNTIME_NAME], 'nodejs');
  t.is(name(4), 'myserver');
  t.is(r.resourceFor({ tgid: 4 }).attributes[ATTR.PROCESS_RUNTIME_NAME], undefined);
  t.is(name(5), 'flask');
  t.is(name(6), 'python3');
  t.is(name(7), 'node');
  t.is(name(8), 'worker', 'a malformed OTEL_RESOURCE_ATTRIBUTES is discarded whole');
});

test('script names for interpreters', (t) => {
  t.is(scriptName('python3', ['python3', 'app.py']), 'app');
  t.is(scriptName('python3.11', ['/usr/bin/python3.11', '-uB', 'svc/main.py']), 'main');
  t.is(scriptName('python3', ['python3', '-mhttp.server']), 'http.server');
  t.is(scriptName('python3', ['python3', '-W', 'ignore', 'a.py']), 'a');
  t.is(scriptName('python3', ['python3']), undefined);
  t.is(scriptName('pypy3', ['pypy3', 'x.py']), 'x');
  t.is(scriptName('node', ['node', '--import', 'tsx', 'src/index.mjs']), 'index');
  t.is(scriptName('node', ['node', '--inspect=9229', 'api.cjs']), 'api');
  t.is(scriptName('ruby', ['ruby', '-r', 'bundler/setup', 'app.rb']), 'app');
  t.is(scriptName('java', ['java', '-jar', 'x.jar']), undefined);
  t.is(runtimeName('python3.11'), 'cpython');
  t.is(runtimeName('pypy3'), 'pypy');
  t.is(runtimeName('node'), 'nodejs');
  t.is(runtimeName('nginx'), undefined);
});

test('container ids from docker, containerd, cri-o and podman cgroup paths', (t) => {
  t.is(containerIdFromCgroups([`/docker/${CID}`]), CID);
  t.is(containerIdFromCgroups([`/system.slice/docker-${CID}.scope`]), CID);
  t.is(containerIdFromCgroups([`/kubepods/burstable/pod${POD}/${CID}`]), CID);
  t.is(
    containerIdFromCgroups([`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`]),
    CID,
  );
  t.is(containerIdFromCgroups([`/machine.slice/crio-${CID}.scope`]), CID);
  t.is(containerIdFromCgroups([`/machine.slice/libpod-${CID}.scope/container`]), CID);
  t.is(containerIdFromCgroups([`/machine.slice/crio-conmon-${CID}.scope`]), undefined, 'conmon is not the container');
  t.is(containerIdFromCgroups(['/user.slice/user-1000.slice/session-3.scope', '/']), undefined);
  t.is(containerIdFromCgroups([`/docker/${CID.slice(1)}`]), undefined, '63 hex digits are not an id');
  t.is(podUidFromCgroups([`/kubepods/besteffort/pod${POD}/${CID}`]), POD);
  t.is(podUidFromCgroups([`/kubepods.slice/kubepods-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`]), POD);
});

test('Kubernetes attributes from the agent environment apply to processes of its pod only', (t) => {
  const { add, resources } = setup(t);
  const agentEnv = { K8S_POD_NAME: 'shop-7d9', K8S_NAMESPACE_NAME: 'prod', K8S_POD_UID: POD, K8S_NODE_NAME: 'node-a', K8S_CONTAINER_NAME: 'app' };
  const other = '11111111-2222-4333-8444-555555555555';
  add({ pid: 10, start: 1, exe: '/app/server', cgroup: `/kubepods/burstable/pod${POD}/${CID}` });
  add({ pid: 11, start: 1, exe: '/app/server', cgroup: `/kubepods/burstable/pod${other}/${'c'.repeat(64)}` });
  add({ pid: 12, start: 1, exe: '/usr/sbin/sshd', cgroup: '/system.slice/ssh.service' }); // a node daemon: nobody's pod
  const r = resources({ agentEnv }); // the host's pid namespace (a DaemonSet with hostPID)
  const same = r.resourceFor({ tgid: 10 }).attributes;
  t.is(same[ATTR.CONTAINER_ID], CID);
  t.is(same[ATTR.K8S_POD_NAME], 'shop-7d9');
  t.is(same[ATTR.K8S_NAMESPACE_NAME], 'prod');
  t.is(same[ATTR.K8S_POD_UID], POD);
  t.is(same[ATTR.K8S_NODE_NAME], 'node-a');
  t.is(same[ATTR.K8S_CONTAINER_NAME], 'app');
  const elsewhere = r.resourceFor({ tgid: 11 }).attributes;
  t.is(elsewhere[ATTR.K8S_POD_UID], other, 'the pod uid the cgroup shows');
  t.is(elsewhere[ATTR.K8S_POD_NAME], undefined, 'never the agent pod name for another pod');
  t.is(elsewhere[ATTR.K8S_NAMESPACE_NAME], undefined);
  t.is(elsewhere[ATTR.K8S_CONTAINER_NAME], undefined);
  t.is(elsewhere[ATTR.K8S_NODE_NAME], 'node-a', 'every process the agent sees is on its node');
  t.is(elsewhere[ATTR.CONTAINER_ID], 'c'.repeat(64));
  const daemon = r.resourceFor({ tgid: 12 }).attributes;
  t.is(daemon[ATTR.K8S_POD_NAME], undefined, 'in the host namespace a cgroup without a pod is not the agent pod');
  t.is(daemon[ATTR.K8S_POD_UID], undefined);
  t.is(daemon[ATTR.K8S_NODE_NAME], 'node-a');
  const agent = r.agentResource().attributes;
  t.is(agent[ATTR.SERVICE_NAME], 'ebpf-otel-sidecar');
  t.is(agent[ATTR.K8S_POD_NAME], 'shop-7d9');
  t.is(agent[ATTR.K8S_CONTAINER_NAME], undefined, 'K8S_CONTAINER_NAME names the application container');
});

test('sidecar (the pod pid namespace): every process is the pod, unless its cgroup names another pod', (t) => {
  const { add, resources } = setup(t);
  const agentEnv = { K8S_POD_NAME: 'shop-7d9', K8S_NAMESPACE_NAME: 'prod', K8S_POD_UID: POD, K8S_NODE_NAME: 'node-a', K8S_CONTAINER_NAME: 'app' };
  const other = '11111111-2222-4333-8444-555555555555';
  // Seen from the agent's own cgroup namespace: the app container's cgroup is a sibling, the pod above the root.
  add({ pid: 7, start: 1, exe: '/app/server', cgroup: `/../cri-containerd-${CID}.scope` });
  add({ pid: 8, start: 1, exe: '/app/worker', cgroup: '/' });
  add({ pid: 9, start: 1, exe: '/app/server', cgroup: `/kubepods/burstable/pod${POD}/${CID}` });
  add({ pid: 11, start: 1, exe: '/app/server', cgroup: `/kubepods/burstable/pod${other}/${'c'.repeat(64)}` });
  const r = resources({ agentEnv, podPidNamespace: true });
  for (const pid of [7, 8, 9]) {
    t.like(
      r.resourceFor({ tgid: pid }).attributes,
      { [ATTR.K8S_POD_NAME]: 'shop-7d9', [ATTR.K8S_NAMESPACE_NAME]: 'prod', [ATTR.K8S_POD_UID]: POD, [ATTR.K8S_NODE_NAME]: 'node-a', [ATTR.K8S_CONTAINER_NAME]: 'app' },
      `pid ${pid}`,
    );
  }
  t.is(r.resourceFor({ tgid: 7 }).attributes[ATTR.CONTAINER_ID], CID, 'container.id from the relative cgroup path');
  t.is(r.resourceFor({ tgid: 8 }).attributes[ATTR.CONTAINER_ID], undefined);
  const elsewhere = r.resourceFor({ tgid: 11 }).attributes;
  t.is(elsewhere[ATTR.K8S_POD_UID], other);
  t.is(elsewhere[ATTR.K8S_POD_NAME], undefined, 'a cgroup naming another pod wins over the namespace');
  t.is(elsewhere[ATTR.K8S_CONTAINER_NAME], undefined);

  // Without its own pod uid the agent cannot tell a pod the cgroup names from its own: nothing from it.
  const unsure = resources({ agentEnv: { ...agentEnv, K8S_POD_UID: '' }, podPidNamespace: true });
  t.is(unsure.resourceFor({ tgid: 9 }).attributes[ATTR.K8S_POD_NAME], undefined);
  t.is(unsure.resourceFor({ tgid: 8 }).attributes[ATTR.K8S_POD_NAME], 'shop-7d9');
});

test('service.instance.id is a v5 UUID of host, boot, pid and start time; the process own value wins', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 20, start: 777, exe: '/bin/srv' });
  add({ pid: 21, start: 777, exe: '/bin/srv' });
  add({ pid: 22, start: 777, exe: '/bin/srv', env: { OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=mine' } });
  add({ pid: 23, exe: '/bin/srv' }); // no stat file: start time unknown
  const a = resources().resourceFor({ tgid: 20 }).attributes[ATTR.SERVICE_INSTANCE_ID];
  const again = resources().resourceFor({ tgid: 20 }).attributes[ATTR.SERVICE_INSTANCE_ID];
  t.is(a, again, 'stable across agent restarts');
  t.is(a, uuidV5('4d63009a-8d0f-11ee-aad7-4c796ed8e320', `node-1/${BOOT}/20/777`));
  t.regex(String(a), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.not(resources().resourceFor({ tgid: 21 }).attributes[ATTR.SERVICE_INSTANCE_ID], a);
  t.is(resources().resourceFor({ tgid: 22 }).attributes[ATTR.SERVICE_INSTANCE_ID], 'mine');
  t.is(resources().resourceFor({ tgid: 23 }).attributes[ATTR.SERVICE_INSTANCE_ID], 'random-uuid');
  // RFC 4122 test vector for v5 (DNS namespace, "python.org").
  t.is(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
});

test('command args only when opted in', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 30, start: 1, exe: '/bin/srv', cmdline: ['srv', '--token', 'x'] });
  t.deepEqual(resources({ captureCommandArgs: true }).resourceFor({ tgid: 30 }).attributes[ATTR.PROCESS_COMMAND_ARGS], ['srv', '--token', 'x']);
});

test('a reused pid is never described by the new process', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 40, start: 2000, exe: '/bin/newcomer', env: { OTEL_SERVICE_NAME: 'newcomer' } });
  const r = resources();
  const a = r.resourceFor({ tgid: 40, startTimeTicks: 1000 }).attributes;
  t.is(a[ATTR.SERVICE_NAME], 'unknown_service');
  t.is(a[ATTR.PROCESS_EXECUTABLE_NAME], undefined);
  t.is(a[ATTR.PROCESS_PID], 40);
  t.is(r.stats.builtWithoutProc, 1);
  // The process that does own the pid now gets its own resource.
  t.is(r.resourceFor({ tgid: 40, startTimeTicks: 2000 }).attributes[ATTR.SERVICE_NAME], 'newcomer');
});

test('a process that exited keeps what was read, or what its exit event told', (t) => {
  const { fp, add, resources } = setup(t);
  add({ pid: 50, start: 10, exe: '/bin/api', env: { OTEL_SERVICE_NAME: 'api' } });
  const r = resources();
  r.learn({ tgid: 50 });
  fp.remove(50);
  r.exited({ tgid: 50 });
  // Another process takes the pid; records of the old one still get the old resource.
  add({ pid: 50, start: 99, exe: '/bin/other', env: { OTEL_SERVICE_NAME: 'other' } });
  t.is(r.resourceFor({ tgid: 50 }).attributes[ATTR.SERVICE_NAME], 'api');

  // Never read: the exit event's executable.
  r.exited({ tgid: 60 }, { comm: 'worker', exePath: '/usr/bin/worker-bin' });
  const w = r.resourceFor({ tgid: 60 }).attributes;
  t.is(w[ATTR.SERVICE_NAME], 'worker-bin');
  t.is(w[ATTR.PROCESS_EXECUTABLE_PATH], '/usr/bin/worker-bin');
  r.exited({ tgid: 61 }, { comm: 'cron' });
  t.is(r.resourceFor({ tgid: 61 }).attributes[ATTR.SERVICE_NAME], 'cron');
});

test('exec invalidates; the cache is a bounded LRU with evictions counted', (t) => {
  const { fp, add, resources } = setup(t);
  add({ pid: 70, start: 1, exe: '/bin/sh', cmdline: ['sh', '-c', 'exec python3 app.py'] });
  const r = resources({ maxProcesses: 2 });
  const first = r.resourceFor({ tgid: 70 });
  t.is(first.attributes[ATTR.SERVICE_NAME], 'sh');
  t.is(r.resourceFor({ tgid: 70 }), first, 'cached: same object');
  fp.remove(70);
  add({ pid: 70, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', 'app.py'] });
  r.invalidate(70);
  t.is(r.resourceFor({ tgid: 70 }).attributes[ATTR.SERVICE_NAME], 'app');
  add({ pid: 71, start: 1, exe: '/bin/a' });
  add({ pid: 72, start: 1, exe: '/bin/b' });
  r.resourceFor({ tgid: 71 });
  r.resourceFor({ tgid: 72 });
  t.is(r.size, 2);
  t.is(r.stats.evicted, 1);
});

test('LRU order: repeated lookups of the newest entry, then of others, evict the least recently used', (t) => {
  const { add, resources } = setup(t);
  for (const pid of [80, 81, 82, 83]) add({ pid, start: 1, exe: `/bin/p${pid}` });
  const r = resources({ maxProcesses: 3 });
  const p80 = r.resourceFor({ tgid: 80 });
  const p81 = r.resourceFor({ tgid: 81 });
  r.resourceFor({ tgid: 81 }); // the newest again: nothing moves
  r.resourceFor({ tgid: 82 });
  t.is(r.resourceFor({ tgid: 80 }), p80, '80 is now the most recent');
  t.is(r.resourceFor({ tgid: 80 }), p80);
  r.resourceFor({ tgid: 83 }); // evicts 81, the least recently used
  t.is(r.stats.evicted, 1);
  t.is(r.resourceFor({ tgid: 80 }), p80, '80 was kept');
  t.not(r.resourceFor({ tgid: 81 }), p81, '81 was evicted and built again');
});

test('start time parsing copes with spaces and parentheses in comm', (t) => {
  const { fp } = setup(t);
  fp.writeFile('proc/90/stat', `90 (a (b) c) S ${Array(18).fill('1').join(' ')} 424242 5 6\n`);
  t.is(readStartTimeTicks(fp.proc, 90), 424242);
  t.is(readStartTimeTicks(fp.proc, 91), undefined);
});

test('OTEL_RESOURCE_ATTRIBUTES parsing', (t) => {
  t.deepEqual(parseResourceAttributes('a=1, b = two%20words ,'), { a: '1', b: 'two words' });
  t.is(parseResourceAttributes('a=1,broken'), undefined);
  t.is(parseResourceAttributes('a=%E0%A4%A'), undefined);
  t.is(parseResourceAttributes(''), undefined);
});

test('configured attributes reach every process, below what the process declares and what the agent measures', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 1, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', 'app.py'] });
  add({ pid: 2, start: 1, exe: '/usr/bin/python3', cmdline: ['python3', 'app.py'], env: { OTEL_SERVICE_NAME: 'own-name' } });
  add({
    pid: 3,
    start: 1,
    exe: '/usr/bin/python3',
    cmdline: ['python3', 'app.py'],
    env: { OTEL_RESOURCE_ATTRIBUTES: 'service.name=declared,deployment.environment.name=staging' },
  });
  const r = resources({
    attributes: { 'service.name': 'shop', 'deployment.environment.name': 'prod', 'service.version': 3, 'process.pid': 999 },
  });
  const a1 = r.resourceFor({ tgid: 1 }).attributes;
  t.is(a1[ATTR.SERVICE_NAME], 'shop', 'above the inferred script name');
  t.is(a1['deployment.environment.name'], 'prod');
  t.is(a1['service.version'], 3, 'types kept');
  t.is(a1[ATTR.PROCESS_PID], 1, 'measured values win');
  const a2 = r.resourceFor({ tgid: 2 }).attributes;
  t.is(a2[ATTR.SERVICE_NAME], 'own-name', 'OTEL_SERVICE_NAME wins');
  t.is(a2['deployment.environment.name'], 'prod');
  const a3 = r.resourceFor({ tgid: 3 }).attributes;
  t.is(a3[ATTR.SERVICE_NAME], 'declared', 'OTEL_RESOURCE_ATTRIBUTES wins per key');
  t.is(a3['deployment.environment.name'], 'staging');
  t.is(a3['service.version'], 3, 'keys the process does not declare still come from the configuration');
  // A process never read from /proc (gone before it was seen) still gets them.
  r.exited({ tgid: 4 }, { comm: 'cron' });
  t.is(r.resourceFor({ tgid: 4 }).attributes['deployment.environment.name'], 'prod');
  t.is(r.resourceFor({ tgid: 4 }).attributes[ATTR.SERVICE_NAME], 'shop');
});

test('exited processes: only the latest maxExited keep their resource; a live one is never dropped for them; a late lookup of a dropped one is built without /proc', (t) => {
  const { add, resources } = setup(t);
  add({ pid: 100, start: 5000, exe: '/usr/bin/app', cmdline: ['app'] });
  const r = resources({ maxExited: 3 });
  r.learn({ tgid: 100 });
  for (let pid = 1000; pid < 1100; pid++) r.exited({ tgid: pid }, { comm: `job${pid}` });
  t.is(r.size, 1 + 3, 'the live process and the last three exits');
  t.like(r.stats, { exitedDropped: 97, evicted: 0, builtWithoutProc: 100 });
  t.is(r.resourceFor({ tgid: 1099 }).attributes['service.name'], 'job1099', 'a kept exit is what it was');
  const late = r.resourceFor({ tgid: 1000 });
  t.is(r.stats.builtWithoutProc, 101, 'rebuilt without /proc: the process is gone');
  t.is(late.attributes['process.pid'], 1000);
  t.is(late.attributes['service.name'], 'unknown_service', 'its exit comm is gone with it: the default, never another process name');
  t.is(r.resourceFor({ tgid: 100 }).attributes['process.pid'], 100, 'the live process kept its resource');
  t.is(r.stats.built, 1);
});
