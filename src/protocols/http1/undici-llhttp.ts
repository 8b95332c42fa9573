// undici's llhttp build: the wasm and the constants file undici keeps under
// lib/llhttp/. They are private to undici (not part of its API), so this file
// checks, once, before anything parses with them, that they are the ones the
// agent was built and tested against: the wasm bytes by sha256, the wasm ABI
// by the names it exports and imports, the constants by the values
// llhttp.ts uses. A change (another undici version, a moved file, a rebuilt
// llhttp) is one error naming the undici found and the one expected, never a
// parser that misreads bytes.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What the agent was built against (package.json pins undici ~7.30.2). */
export const EXPECTED_UNDICI = {
  version: '7.30.2',
  /** sha256 of the wasm bytes each file exports, by path inside the undici package. */
  wasm: {
    'lib/llhttp/llhttp_simd-wasm.js': '2434215e1f7fa0163f22ce895ddbeb83984fa0aa51e123164e053213e5aca028',
    'lib/llhttp/llhttp-wasm.js': '57184a16144b5bc880e29105fa35d75c93dd318563e1b743e110de845e2ab661',
  },
  constants: 'lib/llhttp/constants.js',
} as const;

/** llhttp's errno values llhttp.ts acts on (checked against undici's constants). */
export const LLHTTP_ERROR = { OK: 0, CLOSED_CONNECTION: 5, PAUSED_UPGRADE: 22, PAUSED_H2_UPGRADE: 23 } as const;

/** llhttp_alloc's parser types (checked against undici's constants). */
export const LLHTTP_TYPE = { REQUEST: 1, RESPONSE: 2 } as const;

/** Functions llhttp.ts calls. */
const REQUIRED_EXPORTS = [
  'memory',
  'malloc',
  'free',
  'llhttp_alloc',
  'llhttp_free',
  'llhttp_execute',
  'llhttp_finish',
  'llhttp_reset',
  'llhttp_resume_after_upgrade',
  'llhttp_get_error_pos',
  'llhttp_get_method',
  'llhttp_get_http_major',
  'llhttp_get_http_minor',
] as const;

/** Callbacks llhttp.ts provides (module `env`): the wasm may import these and nothing else. */
export const LLHTTP_IMPORTS = [
  'wasm_on_message_begin',
  'wasm_on_url',
  'wasm_on_status',
  'wasm_on_header_field',
  'wasm_on_header_value',
  'wasm_on_headers_complete',
  'wasm_on_body',
  'wasm_on_message_complete',
] as const;

// lib "ES2022" without DOM has no WebAssembly types: the little used here, declared.
export type WasmModule = object;
interface WasmApi {
  Module: {
    new (bytes: Uint8Array): WasmModule;
    exports(m: WasmModule): { name: string; kind: string }[];
    imports(m: WasmModule): { module: string; name: string; kind: string }[];
  };
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { readonly exports: unknown };
}
export const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** undici's llhttp files are not the expected ones; the message says which undici was found and what was expected. */
export class UndiciLlhttpError extends Error {
  constructor(
    readonly found: string,
    readonly problems: readonly string[],
    dir: string,
  ) {
    super(
      `HTTP/1 parser: undici's llhttp files are not the ones this agent was built against ` +
        `(found undici ${found} in ${dir}, expected undici ${EXPECTED_UNDICI.version}): ${problems.join('; ')}. ` +
        `Install the locked dependencies (npm ci); a new undici needs its llhttp files checked and ` +
        `EXPECTED_UNDICI updated in src/protocols/http1/undici-llhttp.ts`,
    );
    this.name = 'UndiciLlhttpError';
  }
}

/** What llhttp.ts needs, loaded from undici and checked. */
export interface UndiciLlhttp {
  readonly undiciVersion: string;
  /** The compiled parser: the SIMD build, or the plain one where wasm SIMD is missing. */
  readonly module: WasmModule;
  /** Method name by llhttp's method number. */
  readonly methodNames: readonly string[];
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The directory of the undici package this code resolves. */
export function undiciDirectory(): string {
  return path.dirname(require.resolve('undici/package.json'));
}

function versionOf(dir: string): string {
  try {
    const v = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'of unknown version';
  } catch {
    return 'of unknown version';
  }
}

/** Loads a file's module.exports, or records why it could not. */
function load(dir: string, rel: string, problems: string[]): unknown {
  const file = path.join(dir, rel);
  if (!fs.existsSync(file)) {
    problems.push(`${rel} is missing`);
    return undefined;
  }
  try {
    return require(file) as unknown;
  } catch (err) {
    problems.push(`${rel} does not load (${(err as Error).message})`);
    return undefined;
  }
}

function checkConstants(value: unknown, problems: string[]): string[] {
  const rel = EXPECTED_UNDICI.constants;
  const c = value as { ERROR?: Record<string, unknown>; TYPE?: Record<string, unknown>; METHODS?: Record<string, unknown> } | undefined;
  if (c === undefined) return [];
  const expect = (table: 'ERROR' | 'TYPE', expected: Record<string, number>): void => {
    for (const [name, n] of Object.entries(expected)) {
      const got = c[table]?.[name];
      if (got !== n) problems.push(`${rel}: ${table}.${name} is ${String(got)}, expected ${n}`);
    }
  };
  expect('ERROR', LLHTTP_ERROR);
  expect('TYPE', LLHTTP_TYPE);
  const names: string[] = [];
  const methods = c.METHODS;
  if (methods === undefined || typeof methods !== 'object') {
    problems.push(`${rel}: no METHODS table`);
    return names;
  }
  for (const [name, n] of Object.entries(methods)) {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0) names[n] = name;
  }
  if (names[1] !== 'GET' || names[0] !== 'DELETE') problems.push(`${rel}: METHODS does not number DELETE 0 and GET 1`);
  return names;
}

function checkAbi(rel: string, module: WasmModule, problems: string[]): void {
  const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const missing = REQUIRED_EXPORTS.filter((n) => !exported.has(n));
  if (missing.length > 0) problems.push(`${rel}: the wasm does not export ${missing.join(', ')}`);
  const provided = new Set<string>(LLHTTP_IMPORTS);
  const unknown = WebAssembly.Module.imports(module)
    .filter((i) => i.module !== 'env' || !provided.has(i.name))
    .map((i) => `${i.module}.${i.name}`);
  if (unknown.length > 0) problems.push(`${rel}: the wasm imports ${unknown.join(', ')}, which the agent does not provide`);
}

/**
 * Loads and checks undici's llhttp files in `dir` (the undici package).
 * Throws UndiciLlhttpError listing every difference found.
 */
export function loadUndiciLlhttp(dir: string = undiciDirectory()): UndiciLlhttp {
  const problems: string[] = [];
  const methodNames = checkConstants(load(dir, EXPECTED_UNDICI.constants, problems), problems);
  // The SIMD build is faster; the plain one is the fallback for runtimes without wasm SIMD.
  const modules: WasmModule[] = [];
  for (const [rel, expected] of Object.entries(EXPECTED_UNDICI.wasm)) {
    const bytes = load(dir, rel, problems);
    if (bytes === undefined) continue;
    if (!(bytes instanceof Uint8Array)) {
      problems.push(`${rel} does not export the wasm bytes`);
      continue;
    }
    const digest = sha256(bytes);
    if (digest !== expected) problems.push(`${rel} has sha256 ${digest}, expected ${expected}`);
    let module: WasmModule;
    try {
      module = new WebAssembly.Module(bytes);
    } catch {
      continue; // the SIMD build on a runtime without wasm SIMD
    }
    // Checked even when the hash differs: the message then says what changed in the ABI.
    checkAbi(rel, module, problems);
    modules.push(module);
  }
  if (problems.length === 0 && modules.length === 0) problems.push('neither llhttp wasm build compiles on this runtime');
  if (problems.length > 0) throw new UndiciLlhttpError(versionOf(dir), problems, dir);
  return { undiciVersion: versionOf(dir), module: modules[0]!, methodNames };
}
