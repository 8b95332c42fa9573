// Go test programs, built once per test process (and set of flags) into a
// temporary directory removed at exit, offline: module mode for programs of
// the standard library only, GOPATH mode against Debian's packaged sources
// (golang-*-dev, under /usr/share/gocode) for the others. Go's caches go to
// that directory when HOME is not writable (a locked-down CI user).

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

/** Where Debian's golang-*-dev packages put their sources (GOPATH layout). */
export const DEBIAN_GOCODE = '/usr/share/gocode';

export interface GoBuildOptions {
  /** Extra `go build` flags (-ldflags, -buildmode). */
  readonly flags?: readonly string[];
  /** GOPATH mode against Debian's sources, no module proxy (grpc-go from golang-google-grpc-dev). */
  readonly debianGopath?: boolean;
}

const run = promisify(execFile);
const temporary: string[] = [];
process.once('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});
const builds = new Map<string, Promise<string>>();

/** The binary of the Go program in `source` (a directory), built on first use. */
export function goProgram(source: string, options: GoBuildOptions = {}): Promise<string> {
  const key = `${source}\u0000${(options.flags ?? []).join(' ')}\u0000${options.debianGopath === true}`;
  let binary = builds.get(key);
  if (binary === undefined) builds.set(key, (binary = build(source, options)));
  return binary;
}

async function build(source: string, options: GoBuildOptions): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-build-'));
  temporary.push(dir);
  const out = path.join(dir, path.basename(source));
  const env: Record<string, string | undefined> = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '' };
  if (options.debianGopath === true) {
    env['GO111MODULE'] = 'off';
    env['GOPROXY'] = 'off';
    env['GOPATH'] = `${DEBIAN_GOCODE}:${path.join(dir, 'gopath')}`;
  }
  if (!writable(process.env['HOME'])) {
    env['GOCACHE'] = path.join(dir, 'cache');
    if (options.debianGopath !== true) env['GOPATH'] = path.join(dir, 'gopath');
  }
  await run('go', ['build', ...(options.flags ?? []), '-o', out, '.'], { cwd: source, env });
  return out;
}

function writable(dir: string | undefined): boolean {
  if (dir === undefined) return false;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
