// The agent as a per-pod sidecar, with real eBPF: a pod is modelled without a
// container engine as a pid namespace of its own (`unshare --pid --fork
// --mount-proc`, its init standing in for the pause container), which the
// application and the agent join with `nsenter --pid --mount`, as containers
// of a pod with shareProcessNamespace do. The network is the host's, so curl
// runs on the host, outside the namespace. Asserts that spans carry the pids
// the namespace's /proc shows, that a child forked after attach is followed
// under its namespace pid, and that under --all nothing outside the
// namespace (the curl client, a server on the host) yields a single span.
// The --all case runs as the sidecar manifest deploys it: the agent as uid 0
// with its four capabilities only, the application as another user.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, childrenOf, sleep, startAgent, startWorkload, type Workload } from '../helpers/agent';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const SERVER = path.join(ROOT, 'test', 'e2e', 'programs', 'http_server.py');
const SERVER_KIND = 2;
const ERROR = 2;
const POD_UID = '3f9a1b2c-4d5e-4f60-8a7b-9c0d1e2f3a4b';
/** What deploy/kubernetes/sidecar.yaml gives each container: the agent uid 0 with four capabilities, the application another user. */
const AGENT_CAPS = ['setpriv', '--bounding-set=-all,+bpf,+perfmon,+sys_ptrace,+dac_read_search', '--inh-caps=-all'];
const APP_USER = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const K8S_ENV = { K8S_POD_NAME: 'shop-7d9', K8S_NAMESPACE_NAME: 'prod', K8S_POD_UID: POD_UID, K8S_NODE_NAME: 'node-a', K8S_CONTAINER_NAME: 'app' };

const otlp = useOtlpReceiver(anyTest);

interface Pod {
  /** Host pid of the namespace's init (pid 1 inside): the "pause" process. */
  readonly pause: number;
  /** Inode of the pod's pid namespace. */
  readonly ino: bigint;
  /** Prefix that runs a command in the pod (a child of nsenter, in the namespace). */
  readonly enter: string[];
  /** Ends the pod: every process of the namespace. */
  close(): Promise<void>;
}

async function startPod(): Promise<Pod> {
  // --kill-child: should the test runner die, unshare's child (the
  // namespace's init) gets SIGKILL, and with it every process of the namespace.
  const unshare = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'sleep', 'infinity'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => unshare.once('exit', () => resolve()));
  let pause: number | undefined;
  // unshare ignores SIGTERM and SIGINT while its child runs: end the init,
  // the kernel then kills the rest of the namespace and unshare exits.
  const close = async () => {
    if (pause !== undefined) process.kill(pause, 'SIGKILL');
    else unshare.kill('SIGKILL');
    await exited;
  };
  try {
    for (let i = 0; i < 200; i++) {
      [pause] = childrenOf(unshare.pid!);
      // comm becomes sleep at exec, after unshare mounted the namespace's /proc.
      if (pause !== undefined && readOr(`/proc/${pause}/comm`) === 'sleep\n') {
        const ino = fs.statSync(`/proc/${pause}/ns/pid`, { bigint: true }).ino;
        if (ino === fs.statSync('/proc/self/ns/pid', { bigint: true }).ino) throw new Error('unshare did not create a pid namespace');
        return { pause, ino, enter: ['nsenter', '--target', String(pause), '--pid', '--mount', '--'], close };
      }
      await sleep(10);
    }
    throw new Error('the pod namespace did not come up');
  } catch (err) {
    await close();
    throw err;
  }
}

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** NSpid of a host pid: its pid in each namespace from the host's down to its own. */
function nsPids(hostPid: number): number[] {
  const m = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${hostPid}/status`, 'utf8'));
  return m![1]!.trim().split(/\s+/).map(Number);
}

/** The host pid of the pod's process whose namespace pid is `nsPid`. */
function hostPidOf(pod: Pod, nsPid: number): number {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.statSync(`/proc/${name}/ns/pid`, { bigint: true }).ino !== pod.ino) continue;
      const pids = nsPids(Number(name));
      if (pids[pids.length - 1] === nsPid) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  if (found.length !== 1) throw new Error(`namespace pid ${nsPid}: host pids ${JSON.stringify(found)}`);
  return found[0]!;
}

/** Waits for the workload's nth output line (0: hello) as JSON. */
async function lineOf(w: Workload, n: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < 500 && w.lines.length <= n; i++) await sleep(10);
  if (w.lines.length <= n) throw new Error(`no line ${n} from the workload: ${JSON.stringify(w.lines)}`);
  return JSON.parse(w.lines[n]!) as Record<string, unknown>;
}

function curl(port: number, urlPath: string): string {
  return spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}${urlPath}`], { encoding: 'utf8' }).stdout;
}

const CURL_VERSION = /^curl (\S+)/.exec(spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';

function byStart(spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  return [...spans].sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
}

test('sidecar `run --all` in a pid namespace, as deployed: spans of the namespace server under its namespace pid, none from the host', async (t) => {
  const pod = await startPod();
  const hostServer = await startWorkload(PY, [SERVER], { OTEL_SERVICE_NAME: 'host-app' });
  try {
    const app = await startWorkload(pod.enter[0]!, [...pod.enter.slice(1), ...APP_USER, PY, SERVER], { OTEL_SERVICE_NAME: 'pod-app' });
    const nsPid = app.hello.pid as number;
    const appHostPid = hostPidOf(pod, nsPid);
    t.deepEqual(nsPids(appHostPid), [appHostPid, nsPid], 'the server has a host pid and a namespace pid');
    t.not(appHostPid, nsPid);
    t.regex(fs.readFileSync(`/proc/${appHostPid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'the application runs as another user');

    const agent = await startAgent(['run', '--all'], { env: otlp.env(K8S_ENV), prefix: [...pod.enter, ...AGENT_CAPS], prefixForks: true });
    t.regex(fs.readFileSync(`/proc/${childrenOf(agent.pid)[0]}/status`, 'utf8'), /^CapEff:\s+000000c000080004$/m, 'BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH');
    t.true(
      agent.stderr().includes(`pid namespace: ${pod.ino} (not the host's: pids are translated in the kernel; only processes of this namespace are traced)`),
      agent.stderr(),
    );
    const port = app.hello.port as number;
    const hostPort = hostServer.hello.port as number;
    t.deepEqual(['/items/1', '/slow', '/fail'].map((p) => curl(port, p)), ['200', '200', '503']);
    t.deepEqual(['/items/2', '/items/3'].map((p) => curl(hostPort, p)), ['200', '200'], 'host traffic at the same time');
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);

    const spans = byStart(otlp.receiver.spans);
    t.is(spans.length, 3, 'one span per request to the namespace server; nothing from curl or the host server');
    t.deepEqual(spans.map((s) => s.resource['process.pid']), [nsPid, nsPid, nsPid], 'the namespace pid, as /proc inside shows it');
    t.true(spans.every((s) => s.kind === SERVER_KIND));
    t.deepEqual(spans.map((s) => s.name), ['GET /items/{id}', 'GET /slow', 'GET /fail']);
    const [first, , fail] = spans as [ReceivedSpan, ReceivedSpan, ReceivedSpan];
    const peerPort = first.attributes['client.port'] as number;
    t.true(peerPort > 0);
    t.deepEqual(first.attributes, {
      'http.request.method': 'GET',
      'url.path': '/items/1',
      'url.scheme': 'http',
      'http.route': '/items/{id}',
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
      'server.address': '127.0.0.1',
      'server.port': port,
      'client.address': '127.0.0.1',
      'client.port': peerPort,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': peerPort,
      'user_agent.original': `curl/${CURL_VERSION}`,
      'http.request.body.size': 0,
      'http.response.body.size': 11,
    });
    t.is(fail.status.code, ERROR);
    // Read from the namespace's /proc under that pid: the server's own environment and executable.
    t.like(first.resource, {
      'service.name': 'pod-app',
      'process.pid': nsPid,
      'process.executable.path': fs.realpathSync(PY),
      // Every process of the namespace is the agent's pod.
      'k8s.pod.name': 'shop-7d9',
      'k8s.namespace.name': 'prod',
      'k8s.pod.uid': POD_UID,
      'k8s.node.name': 'node-a',
      'k8s.container.name': 'app',
    });
    t.false(otlp.receiver.spans.some((s) => s.resource['service.name'] === 'host-app'));
    const points = otlp.receiver.latestPoints('http.server.request.duration');
    t.deepEqual([...new Set(points.map((p) => p.resource['process.pid']))], [nsPid], 'metrics of the namespace server only');
    t.is(points.reduce((n, p) => n + p.histogram!.count, 0), 3);
  } finally {
    hostServer.child.kill();
    await pod.close();
  }
});

// Forks after the agent attached (on "go"); the child runs the HTTP server in
// the forked process itself (no exec) and prints its own pid and port.
const FORKING_LAUNCHER = `
import json, os, runpy, sys
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
if os.fork() == 0:
    runpy.run_path(sys.argv[1], run_name="__main__")
    os._exit(0)
os.wait()
`;

test('sidecar `run --pid <namespace pid>`: a child forked after attach is followed under its namespace pid', async (t) => {
  const pod = await startPod();
  try {
    const launcher = await startWorkload(pod.enter[0]!, [...pod.enter.slice(1), PY, '-u', '-c', FORKING_LAUNCHER, SERVER]);
    // Same namespace, same program, not selected: it must stay silent.
    const sibling = await startWorkload(pod.enter[0]!, [...pod.enter.slice(1), PY, SERVER]);
    const parentNsPid = launcher.hello.pid as number;
    t.not(hostPidOf(pod, parentNsPid), parentNsPid, 'a namespace pid, not the host one');

    const agent = await startAgent(['run', '--pid', String(parentNsPid)], { env: otlp.env(), prefix: pod.enter, prefixForks: true });
    launcher.go();
    const worker = await lineOf(launcher, 1);
    const workerNsPid = worker.pid as number;
    const workerHostPid = hostPidOf(pod, workerNsPid);
    t.deepEqual(nsPids(workerHostPid), [workerHostPid, workerNsPid]);
    t.not(workerNsPid, parentNsPid);
    const port = worker.port as number;
    t.deepEqual(['/items/5', '/missing'].map((p) => curl(port, p)), ['200', '404']);
    t.is(curl(sibling.hello.port as number, '/items/6'), '200');
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);

    const spans = byStart(otlp.receiver.spans);
    t.deepEqual(
      spans.map((s) => [s.resource['process.pid'], s.name, s.attributes['http.response.status_code']]),
      [
        [workerNsPid, 'GET /items/{id}', 200],
        [workerNsPid, 'GET /missing', 404],
      ],
      'the forked worker, under its namespace pid; nothing from the unselected sibling',
    );
    t.is(spans[0]!.attributes['server.port'], port);
  } finally {
    await pod.close();
  }
});

test('sidecar `capture --pid <namespace pid>`: the fork is reported with namespace pids, the traffic under the child', async (t) => {
  const pod = await startPod();
  try {
    const launcher = await startWorkload(pod.enter[0]!, [...pod.enter.slice(1), PY, '-u', '-c', FORKING_LAUNCHER, SERVER]);
    const parentNsPid = launcher.hello.pid as number;
    const agent = await startAgent(['capture', '--pid', String(parentNsPid)], { prefix: pod.enter, prefixForks: true });
    launcher.go();
    const worker = await lineOf(launcher, 1);
    const workerNsPid = worker.pid as number;
    t.is(curl(worker.port as number, '/items/9'), '200');
    await sleep(300);
    const { code, lines } = await agent.stop();
    t.is(code, 0);
    const forks = lines.filter((l) => / fork of \d+$/.test(l)).map((l) => l.split(' ').slice(1).join(' '));
    t.deepEqual(forks, [`${workerNsPid}/python3 fork of ${parentNsPid}`], 'the child and its parent by their namespace pids');
    const traffic = lines.filter((l) => / conn=\d+ /.test(l));
    t.true(traffic.length >= 4, lines.join('\n')); // open, request, response, close at least
    t.true(traffic.every((l) => l.split(' ')[1] === `${workerNsPid}/python3`), lines.join('\n'));
    t.true(traffic.some((l) => l.includes(' server ingress ') && l.includes('"GET /items/9 HTTP/1.1..')), lines.join('\n'));
  } finally {
    await pod.close();
  }
});
