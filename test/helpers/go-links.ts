// Go links test helpers: a copy of a Go binary that says it is another Go
// version (its .go.buildinfo string rewritten in place, same length), the
// way a binary of a release the agent has no verified layout for looks.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfFile } from '../../src/capture/elf/elf';

const temporary: string[] = [];
process.once('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

/** A copy of `binary` whose build info says Go `minor` ("1.99") instead of its own minor version (same length). */
export async function goBinaryWithVersion(binary: string, minor: string): Promise<string> {
  const bytes = fs.readFileSync(binary);
  const elf = ElfFile.open(binary);
  let at: number;
  try {
    at = elf.section('.go.buildinfo')!.offset;
  } finally {
    elf.close();
  }
  const m = /go(\d+\.\d+)/.exec(bytes.toString('latin1', at + 32, at + 64));
  if (!m || m[1]!.length !== minor.length) throw new Error(`${binary}: no go version of the length of ${minor} in its build info`);
  const from = bytes.indexOf(`go${m[1]}`, at, 'latin1');
  bytes.write(`go${minor}`, from, 'latin1');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-version-'));
  temporary.push(dir);
  const out = path.join(dir, path.basename(binary));
  fs.writeFileSync(out, bytes, { mode: 0o755 });
  return out;
}
