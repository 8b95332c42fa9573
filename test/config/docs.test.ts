import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import { settingsTable } from '../../src/config/schema';
import { RUN_USAGE } from '../../src/cli/run-command';
import { BIN, ROOT } from '../helpers/agent';

test("the README's table of settings is the schema's", (t) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- config-table:begin -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  t.truthy(m, 'markers present');
  t.is(m![1], settingsTable());
});

test('run --help names the file and the precedence', (t) => {
  t.regex(RUN_USAGE, /--config FILE/);
  t.regex(RUN_USAGE, /built-in defaults < the file < environment variables \(OTEL_\*, EBPF_OTEL_\*\) < flags/);
  const r = spawnSync(BIN, ['run', '--help'], { encoding: 'utf8' });
  t.is(r.status, 0);
  t.is(r.stdout, RUN_USAGE + '\n');
});

test('a file with problems: every one on stderr, FILE:LINE:COL first, exit code 2, nothing started', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, 'selectors:\n  exe: [python3]\nexport:\n  endpont: http://c:4318\nlog:\n  level: loud\n');
  const env: NodeJS.ProcessEnv = { ...process.env, EBPF_OTEL_CONFIG: file };
  delete env['EBPF_OTEL_LOG_LEVEL'];
  const r = spawnSync(BIN, ['run'], { encoding: 'utf8', env });
  t.is(r.status, 2);
  t.is(r.stdout, '');
  t.is(
    r.stderr,
    `${file}:4:3: export.endpont: unknown key (did you mean endpoint?)\n` +
      `${file}:6:10: log.level: expected one of debug, info, warn, error, got "loud"\n` +
      `ebpf-otel: 2 problems in ${file}\n`,
  );
  const syntax = path.join(dir, 'broken.yaml');
  fs.writeFileSync(syntax, 'log:\n  level: "info\n');
  const s = spawnSync(BIN, ['config', 'print', '--config', syntax], { encoding: 'utf8' });
  t.is(s.status, 2);
  t.is(s.stderr, `${syntax}:3:1: YAML: Missing closing "quote\nebpf-otel: 1 problem in ${syntax}\n`);
});
