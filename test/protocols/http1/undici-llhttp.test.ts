import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXPECTED_UNDICI, loadUndiciLlhttp, undiciDirectory, UndiciLlhttpError } from '../../../src/protocols/http1/undici-llhttp';

const ROOT = path.resolve(__dirname, '../../../..');
const SIMD = 'lib/llhttp/llhttp_simd-wasm.js';
const PLAIN = 'lib/llhttp/llhttp-wasm.js';
/** The smallest valid wasm module: magic and version, no sections. */
const EMPTY_WASM = "module.exports = Buffer.from('0061736d01000000', 'hex');\n";
const EMPTY_WASM_SHA256 = createHash('sha256').update(Buffer.from('0061736d01000000', 'hex')).digest('hex');

/** A copy of undici's package.json (with `version`) and its lib/llhttp/ in a temporary directory. */
function fakeUndici(t: { teardown(fn: () => void): void }, version: string): string {
  const real = undiciDirectory();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'undici-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(path.join(real, 'lib', 'llhttp'), path.join(dir, 'lib', 'llhttp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'undici', version }));
  return dir;
}

function errorOf(t: { throws(fn: () => unknown, e: object): unknown }, dir: string): UndiciLlhttpError {
  return t.throws(() => loadUndiciLlhttp(dir), { instanceOf: UndiciLlhttpError }) as UndiciLlhttpError;
}

test('the installed undici passes: its version, a compiled module and the method table', (t) => {
  const llhttp = loadUndiciLlhttp();
  t.is(llhttp.undiciVersion, EXPECTED_UNDICI.version);
  t.is(llhttp.methodNames[1], 'GET');
  t.is(llhttp.methodNames[0], 'DELETE');
});

test('an unaltered copy passes whatever version it claims (the bytes decide)', (t) => {
  t.is(loadUndiciLlhttp(fakeUndici(t, '7.30.9')).undiciVersion, '7.30.9');
});

test('another wasm: one error naming the undici found and the one expected, the hash and the ABI it lacks', (t) => {
  const dir = fakeUndici(t, '7.99.0');
  fs.writeFileSync(path.join(dir, PLAIN), EMPTY_WASM);
  const err = errorOf(t, dir);
  t.is(err.found, '7.99.0');
  t.regex(err.message, /^HTTP\/1 parser: undici's llhttp files are not the ones this agent was built against/);
  t.true(err.message.includes(`found undici 7.99.0 in ${dir}, expected undici ${EXPECTED_UNDICI.version}`));
  t.deepEqual(err.problems, [
    `${PLAIN} has sha256 ${EMPTY_WASM_SHA256}, expected ${EXPECTED_UNDICI.wasm[PLAIN]}`,
    `${PLAIN}: the wasm does not export memory, malloc, free, llhttp_alloc, llhttp_free, llhttp_execute, llhttp_finish, llhttp_reset, llhttp_resume_after_upgrade, llhttp_get_error_pos, llhttp_get_method, llhttp_get_http_major, llhttp_get_http_minor`,
  ]);
  t.true(err.message.includes('src/protocols/http1/undici-llhttp.ts'));
});

test('a moved or missing file is named', (t) => {
  const dir = fakeUndici(t, '8.0.0');
  fs.rmSync(path.join(dir, SIMD));
  fs.rmSync(path.join(dir, 'lib', 'llhttp', 'constants.js'));
  t.deepEqual(errorOf(t, dir).problems, ['lib/llhttp/constants.js is missing', `${SIMD} is missing`]);
});

test('constants whose values moved are named with the value found', (t) => {
  const dir = fakeUndici(t, '7.30.3');
  const file = path.join(dir, 'lib', 'llhttp', 'constants.js');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('PAUSED_UPGRADE: 22,', 'PAUSED_UPGRADE: 40,'));
  t.deepEqual(errorOf(t, dir).problems, ['lib/llhttp/constants.js: ERROR.PAUSED_UPGRADE is 40, expected 22']);
});

test('a package without a readable version is reported as such', (t) => {
  const dir = fakeUndici(t, '0');
  fs.rmSync(path.join(dir, 'package.json'));
  fs.writeFileSync(path.join(dir, SIMD), EMPTY_WASM);
  t.is(errorOf(t, dir).found, 'of unknown version');
});

test('run stops at start with that one error, before any capture', (t) => {
  // The compiled agent beside a node_modules whose undici has another llhttp.
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-'));
  t.teardown(() => fs.rmSync(tree, { recursive: true, force: true }));
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(tree, 'dist', 'src'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(tree, 'package.json'));
  const modules = path.join(tree, 'node_modules');
  fs.mkdirSync(modules);
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name !== 'undici' && !name.startsWith('.')) fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const undici = path.join(modules, 'undici');
  fs.cpSync(undiciDirectory(), undici, { recursive: true });
  fs.writeFileSync(path.join(undici, 'package.json'), JSON.stringify({ name: 'undici', version: '7.99.0', main: 'index.js' }));
  fs.writeFileSync(path.join(undici, SIMD), EMPTY_WASM);
  const r = spawnSync(process.execPath, [path.join(tree, 'dist', 'src', 'cli', 'main.js'), 'run', '--pid', '1', '--console'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, EBPF_OTEL_DEBUG: '', EBPF_OTEL_CONFIG: '' },
  });
  t.is(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  const last = lines[lines.length - 1]!;
  t.true(last.startsWith("ebpf-otel: HTTP/1 parser: undici's llhttp files are not the ones this agent was built against"), r.stderr);
  t.true(last.includes(`found undici 7.99.0 in ${undici}, expected undici ${EXPECTED_UNDICI.version}`), last);
  t.true(last.includes(`${SIMD} has sha256`), last);
  t.false(r.stderr.includes('    at '), 'no stack trace');
});
