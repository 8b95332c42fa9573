// Reads what process selection needs from /proc. The root is injectable so
// selection logic is tested on a fake tree without root or real processes.
// Every read tolerates the process vanishing under it: undefined, never a throw.

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileId {
  readonly dev: number;
  readonly ino: number;
}

/** task->flags bit set once do_exit has begun (include/linux/sched.h). */
const PF_EXITING = 0x4;

export class ProcFs {
  constructor(readonly root = '/proc') {}

  pids(): number[] {
    const out: number[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch {
      return out;
    }
    for (const name of names) {
      const c = name.charCodeAt(0);
      if (c >= 48 && c <= 57) {
        const pid = Number(name);
        if (Number.isInteger(pid)) out.push(pid);
      }
    }
    return out;
  }

  /** Target of /proc/pid/exe as the kernel names it; undefined for kernel threads. */
  exePath(pid: number): string | undefined {
    try {
      return fs.readlinkSync(this.p(pid, 'exe'));
    } catch {
      return undefined;
    }
  }

  /** Identity of the running executable (follows the exe magic link). */
  exeId(pid: number): FileId | undefined {
    return statId(this.p(pid, 'exe'));
  }

  /** Identity of `file` as the process sees it (through its own root). */
  fileIdInRoot(pid: number, file: string): FileId | undefined {
    return statId(path.join(this.p(pid, 'root'), file));
  }

  /** The first bytes of `file` as the process sees it (through its own root). */
  headInRoot(pid: number, file: string, bytes: number): Buffer | undefined {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.join(this.p(pid, 'root'), file), 'r');
      const buf = Buffer.alloc(bytes);
      const n = fs.readSync(fd, buf, 0, bytes, 0);
      return buf.subarray(0, n);
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  cwd(pid: number): string | undefined {
    try {
      return fs.readlinkSync(this.p(pid, 'cwd'));
    } catch {
      return undefined;
    }
  }

  cmdline(pid: number): string[] | undefined {
    const raw = this.read(pid, 'cmdline');
    if (raw === undefined || raw.length === 0) return undefined;
    const parts = raw.split('\0');
    if (parts[parts.length - 1] === '') parts.pop();
    return parts;
  }

  comm(pid: number): string | undefined {
    return this.read(pid, 'comm')?.replace(/\n$/, '');
  }

  /** Selected fields of /proc/pid/status. */
  status(pid: number): { tgid: number; ppid: number } | undefined {
    const raw = this.read(pid, 'status');
    if (raw === undefined) return undefined;
    const tgid = /^Tgid:\s+(\d+)$/m.exec(raw);
    const ppid = /^PPid:\s+(\d+)$/m.exec(raw);
    if (!tgid || !ppid) return undefined;
    return { tgid: Number(tgid[1]), ppid: Number(ppid[1]) };
  }

  /**
   * The process has exited or is exiting: gone from /proc, a zombie (state Z
   * or X), or PF_EXITING in its flags (do_exit has begun: its exe link is
   * already gone while its state still reads R or S). A process in the middle
   * of an exec is none of these: its exe link may be unreadable for a moment,
   * but it is alive.
   */
  exited(pid: number): boolean {
    const raw = this.read(pid, 'stat');
    if (raw === undefined) return this.read(pid, 'status') === undefined;
    // After the comm's closing parenthesis: state (field 3), ..., flags (field 9).
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const flags = Number(fields[6]);
    return state === 'Z' || state === 'X' || (Number.isInteger(flags) && (flags & PF_EXITING) !== 0);
  }

  /** The process's environment; undefined when unreadable. */
  environ(pid: number): Map<string, string> | undefined {
    const raw = this.read(pid, 'environ');
    if (raw === undefined) return undefined;
    const env = new Map<string, string>();
    for (const entry of raw.split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return env;
  }

  /** The cgroup v2 path ("0::/path" line), undefined on a v1-only process view. */
  cgroupV2Path(pid: number): string | undefined {
    const raw = this.read(pid, 'cgroup');
    if (raw === undefined) return undefined;
    const line = raw.split('\n').find((l) => l.startsWith('0::'));
    return line?.slice(3);
  }

  /** All cgroup lines' paths (v1 and v2), for container id lookup. */
  cgroupPaths(pid: number): string[] {
    const raw = this.read(pid, 'cgroup');
    if (raw === undefined) return [];
    const out: string[] = [];
    for (const line of raw.split('\n')) {
      const second = line.indexOf(':', line.indexOf(':') + 1);
      if (second > 0) out.push(line.slice(second + 1));
    }
    return out;
  }

  /** Socket inodes this process holds open. */
  socketInodes(pid: number): Set<number> {
    const out = new Set<number>();
    const dir = this.p(pid, 'fd');
    let fds: string[];
    try {
      fds = fs.readdirSync(dir);
    } catch {
      return out;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(path.join(dir, fd));
      } catch {
        continue;
      }
      if (target.startsWith('socket:[')) out.add(Number(target.slice(8, -1)));
    }
    return out;
  }

  /** Network namespace inode of a process. */
  netnsInode(pid: number): number | undefined {
    try {
      const target = fs.readlinkSync(this.p(pid, 'ns/net'));
      const m = /^net:\[(\d+)\]$/.exec(target);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Inodes of TCP sockets in LISTEN state on `port`, in the network namespace of `pid`. */
  listeningInodes(pid: number, port: number): Set<number> {
    const out = new Set<number>();
    for (const file of ['net/tcp', 'net/tcp6']) {
      const raw = this.read(pid, file);
      if (raw === undefined) continue;
      for (const line of raw.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        // sl local_address rem_address st ... inode(9)
        if (cols.length < 10 || cols[3] !== '0A') continue;
        const local = cols[1]!;
        const p = parseInt(local.slice(local.indexOf(':') + 1), 16);
        if (p === port) out.add(Number(cols[9]));
      }
    }
    return out;
  }

  private p(pid: number, file: string): string {
    return `${this.root}/${pid}/${file}`;
  }

  private read(pid: number, file: string): string | undefined {
    try {
      return fs.readFileSync(this.p(pid, file), 'utf8');
    } catch {
      return undefined;
    }
  }
}

function statId(p: string): FileId | undefined {
  try {
    const st = fs.statSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}
