// The image's runtime stage, without a container engine: the Dockerfile's
// runtime stage is exactly what deploy/sidecar/assemble-runtime.sh builds, so
// this runs that script and starts the agent from its output, with production
// dependencies only, against a real server: a span comes out.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startWorkload } from '../helpers/agent';

ebpfTest.serial('the runtime stage (assemble-runtime.sh) runs the agent with production dependencies only', async (t) => {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-runtime-'));
  try {
    const built = spawnSync('bash', [path.join(ROOT, 'deploy', 'sidecar', 'assemble-runtime.sh'), dest], { encoding: 'utf8', timeout: 240_000 });
    t.is(built.status, 0, built.stderr);
    for (const dev of ['ava', 'typescript', 'fast-check', 'kubernetes-models']) t.false(fs.existsSync(path.join(dest, 'node_modules', dev)), `${dev} left out`);
    t.false(fs.existsSync(path.join(dest, 'dist', 'test')), 'no tests in the image');
    t.true(fs.existsSync(path.join(dest, 'preload', 'node', 'ebpf-otel-preload.js')), 'the Node.js preload is in the image');

    const server = await startWorkload('/usr/bin/python3', [path.join(ROOT, 'test', 'e2e', 'programs', 'http_server.py')]);
    try {
      const agent = spawn(path.join(dest, 'bin', 'ebpf-otel'), ['run', '--pid', String(server.pid), '--console'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
      agent.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
      for (let i = 0; i < 200 && !err.includes('ebpf-otel: ready'); i++) await sleep(100);
      t.true(err.includes('ebpf-otel: ready'), err);
      const code = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${server.hello.port as number}/items/3`], { encoding: 'utf8' }).stdout;
      t.is(code, '200');
      await sleep(300);
      agent.kill('SIGINT');
      t.is(await exited, 0, err);
      t.regex(out, /SERVER {2}GET \/items\/\{id\} {2}OK/);
    } finally {
      server.child.kill();
    }
  } finally {
    fs.rmSync(dest, { recursive: true, force: true });
  }
});
