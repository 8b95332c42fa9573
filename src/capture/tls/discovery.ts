// Finds a process's TLS libraries: its executable file mappings
// (/proc/PID/maps), each file's identity (st_dev, st_ino of
// /proc/PID/map_files/<range>: the very file mapped) and what it is
// (library.ts), cached by identity so that a file shared by many processes
// is read once. Paths for reading and attaching go through /proc/PID/root:
// an agent in its own container sees the application's files only there.

import * as fs from 'node:fs';
import { ElfError, ElfFile } from '../elf/elf';
import { classifyElf, findOpenSslVersion, kindByName, type TlsLibrary } from './library';
import { execMappings, type ExecMapping } from './maps';

/** A TLS library mapped by a process. */
export interface MappedTlsLibrary {
  /** "dev:ino" of the mapped file. */
  readonly key: string;
  /** As the process sees it. */
  readonly path: string;
  /** Where the agent reaches that same file: /proc/PID/root/<path>, or the map_files link when the path now names another file. */
  readonly attachPath: string;
  readonly library: TlsLibrary;
}

/** Files classified and remembered at most (each an entry of a few hundred bytes). */
const MAX_CLASSIFIED = 4096;

export class TlsDiscovery {
  /** By file identity: the TLS library, null for other files. */
  private readonly classified = new Map<string, TlsLibrary | null>();
  /** libcrypto files by identity: the OpenSSL version they hold, null for none. */
  private readonly cryptoVersions = new Map<string, string | null>();
  /** Files that could not be read as ELF: key -> reason (not retried while remembered). */
  readonly unreadable = new Map<string, string>();
  /** Times the classification cache was full and started over. */
  cacheResets = 0;

  constructor(private readonly procRoot = '/proc') {}

  /** The executable file mappings of a process; undefined when it is gone or unreadable. */
  mappings(pid: number): ExecMapping[] | undefined {
    try {
      return execMappings(fs.readFileSync(`${this.procRoot}/${pid}/maps`, 'latin1'));
    } catch {
      return undefined;
    }
  }

  /** The TLS libraries among a process's mappings (probed or not). */
  libraries(pid: number, maps: readonly ExecMapping[]): MappedTlsLibrary[] {
    const out: MappedTlsLibrary[] = [];
    for (const m of maps) {
      const id = this.identity(pid, m);
      if (!id) continue;
      let lib = this.classified.get(id.key);
      if (lib === undefined) {
        if (this.unreadable.has(id.key)) continue;
        try {
          lib = classifyElf(m.path, id.readPath);
        } catch (err) {
          if (!(err instanceof ElfError)) throw err;
          this.remember(this.unreadable, id.key, err.message);
          continue;
        }
        lib = lib ?? null;
        this.remember(this.classified, id.key, lib);
      }
      if (lib) out.push({ key: id.key, path: m.path, attachPath: id.readPath, library: lib });
    }
    // libssl holds no version string: its libcrypto does (same process, same soname version).
    return out.map((l) => (l.library.kind === 'openssl' && l.library.version === undefined ? this.withCryptoVersion(pid, maps, l) : l));
  }

  private withCryptoVersion(pid: number, maps: readonly ExecMapping[], l: MappedTlsLibrary): MappedTlsLibrary {
    const suffix = /^libssl(\.so.*)$/.exec(l.path.slice(l.path.lastIndexOf('/') + 1))?.[1];
    if (suffix === undefined) return l;
    const crypto = maps.find((m) => kindByName(m.path) === 'libcrypto' && m.path.endsWith('/libcrypto' + suffix));
    if (!crypto) return l;
    const id = this.identity(pid, crypto);
    if (!id) return l;
    let version = this.cryptoVersions.get(id.key) ?? undefined;
    if (!this.cryptoVersions.has(id.key)) {
      try {
        const elf = ElfFile.open(id.readPath);
        try {
          version = findOpenSslVersion(elf);
        } finally {
          elf.close();
        }
      } catch (err) {
        if (!(err instanceof ElfError)) throw err;
      }
      this.remember(this.cryptoVersions, id.key, version ?? null);
    }
    if (version === undefined) return l;
    const library = { ...l.library, version };
    this.remember(this.classified, l.key, library);
    return { ...l, library };
  }

  /**
   * The mapped file's identity, and a path to it: through the process's root
   * when that path still names the mapped file, else the map_files link (a
   * file replaced on disk since it was mapped: upgrades).
   */
  private identity(pid: number, m: ExecMapping): { key: string; readPath: string } | undefined {
    const mapFile = `${this.procRoot}/${pid}/map_files/${m.range}`;
    const rootPath = `${this.procRoot}/${pid}/root${m.path}`;
    const mapped = statKey(mapFile);
    const rooted = statKey(rootPath);
    if (mapped === undefined) return rooted === undefined ? undefined : { key: rooted, readPath: rootPath };
    return { key: mapped, readPath: rooted === mapped ? rootPath : mapFile };
  }

  private remember<V>(m: Map<string, V>, key: string, v: V): void {
    if (m.size >= MAX_CLASSIFIED && !m.has(key)) {
      m.clear();
      this.cacheResets++;
    }
    m.set(key, v);
  }
}

function statKey(p: string): string | undefined {
  try {
    const st = fs.statSync(p, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
