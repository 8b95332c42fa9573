// A fake /proc tree on disk, for selection tests without root or real processes.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface FakeProcess {
  pid: number;
  tgid?: number;
  ppid?: number;
  /** Path (inside the fake root) of the executable; created as a file if missing. */
  exe?: string;
  cmdline?: string[];
  env?: Record<string, string>;
  cgroup?: string;
  sockets?: number[];
  /** LISTEN sockets in this process's namespace: [port, inode]. */
  listening?: [number, number][];
}

export class FakeProc {
  readonly dir: string;
  readonly proc: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fakeproc-'));
    this.proc = path.join(this.dir, 'proc');
    fs.mkdirSync(this.proc);
  }

  /** Absolute path of a file in the fake filesystem. */
  file(p: string): string {
    return path.join(this.dir, p);
  }

  writeFile(p: string, content = ''): string {
    const abs = this.file(p);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
    return abs;
  }

  symlink(p: string, target: string): string {
    const abs = this.file(p);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.symlinkSync(target, abs);
    return abs;
  }

  add(p: FakeProcess): void {
    const d = path.join(this.proc, String(p.pid));
    fs.mkdirSync(path.join(d, 'fd'), { recursive: true });
    fs.mkdirSync(path.join(d, 'net'), { recursive: true });
    fs.mkdirSync(path.join(d, 'ns'), { recursive: true });
    fs.writeFileSync(path.join(d, 'status'), `Name:\tx\nTgid:\t${p.tgid ?? p.pid}\nPid:\t${p.pid}\nPPid:\t${p.ppid ?? 1}\n`);
    if (p.exe) {
      const exe = this.file(p.exe);
      if (!fs.existsSync(exe)) this.writeFile(p.exe, 'binary');
      fs.symlinkSync(exe, path.join(d, 'exe'));
    }
    fs.writeFileSync(path.join(d, 'cmdline'), (p.cmdline ?? []).map((a) => a + '\0').join(''));
    fs.writeFileSync(
      path.join(d, 'environ'),
      Object.entries(p.env ?? {}).map(([k, v]) => `${k}=${v}\0`).join(''),
    );
    fs.writeFileSync(path.join(d, 'cgroup'), `0::${p.cgroup ?? '/'}\n`);
    fs.symlinkSync('/', path.join(d, 'root'));
    fs.symlinkSync(this.dir, path.join(d, 'cwd'));
    fs.symlinkSync('net:[4026531840]', path.join(d, 'ns', 'net'));
    (p.sockets ?? []).forEach((ino, i) => fs.symlinkSync(`socket:[${ino}]`, path.join(d, 'fd', String(10 + i))));
    const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    const rows = (p.listening ?? []).map(
      ([port, ino], i) =>
        `   ${i}: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${ino} 1 0000000000000000 100 0 0 10 0\n`,
    );
    fs.writeFileSync(path.join(d, 'net', 'tcp'), header + rows.join(''));
    fs.writeFileSync(path.join(d, 'net', 'tcp6'), header);
  }

  remove(pid: number): void {
    fs.rmSync(path.join(this.proc, String(pid)), { recursive: true, force: true });
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
