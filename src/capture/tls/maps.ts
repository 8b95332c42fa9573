// /proc/PID/maps: the files a process maps executable. Those are where its
// TLS code can be (a shared libssl, or a binary that links OpenSSL in).

/** One executable file mapping of /proc/PID/maps. */
export interface ExecMapping {
  /** "start-end" in hex, as /proc/PID/map_files names the mapping. */
  readonly range: string;
  /** Device and inode as maps prints them ("fd:01", 1234): the file as the mapping's mount sees it. */
  readonly dev: string;
  readonly inode: number;
  /** The path as the process sees it (inside its mount namespace). */
  readonly path: string;
}

/**
 * The distinct files mapped executable, first mapping of each (by path and
 * inode). Anonymous, special ([vdso]...) and deleted mappings are left out:
 * a deleted file cannot be attached to by path.
 */
export function execMappings(maps: string): ExecMapping[] {
  const out: ExecMapping[] = [];
  const seen = new Set<string>();
  let at = 0;
  while (at < maps.length) {
    let end = maps.indexOf('\n', at);
    if (end < 0) end = maps.length;
    const line = maps.slice(at, end);
    at = end + 1;
    // address perms offset dev inode path (the path may hold spaces)
    const m = /^([0-9a-f]+-[0-9a-f]+) ([r-][w-]([x-])[ps-]) [0-9a-f]+ ([0-9a-f]+:[0-9a-f]+) (\d+)\s+(.*)$/.exec(line);
    if (!m || m[3] !== 'x') continue;
    const inode = Number(m[5]);
    const path = m[6]!;
    if (inode === 0 || !path.startsWith('/') || path.endsWith(' (deleted)')) continue;
    const key = `${m[4]} ${inode} ${path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ range: m[1]!, dev: m[4]!, inode, path });
  }
  return out;
}

/** What changes when a process maps or unmaps an executable file: compared between scans. */
export function mappingSignature(files: readonly ExecMapping[]): string {
  return files.map((f) => `${f.dev} ${f.inode} ${f.path}`).join('\n');
}
