// nginx's upstream module as a link runtime (bpf/uprobes/nginx_link.bpf.h):
// an ELF file whose dynamic symbol table defines the functions the probes
// hook (nginx exports its ngx_* symbols: Debian's build, and any build
// whose dynamic modules link against it) gets the link probes, at their file
// offsets, and a slot of the link_nginx_offsets map with the structure offsets of
// its build. No protocol knowledge, only how nginx looks from outside.

import { ElfFile, STT_FUNC } from '../elf/elf';
import { NginxLinkOffsetsLayout } from './nginx-layout';
import type { LinkProbes, LinkRuntime } from './runtime';

/** The structure offsets the probes read (bpf/nginx_link.h), in bytes. */
export interface NginxLinkOffsets {
  /** ngx_http_request_t.connection (after the uint32 signature). */
  readonly requestConnection: number;
  /** ngx_http_request_t.upstream: after `cache` in builds with the HTTP cache. */
  readonly requestUpstream: number;
  /** ngx_http_upstream_t.peer. */
  readonly upstreamPeer: number;
  /** ngx_peer_connection_t.connection. */
  readonly peerConnection: number;
  /** ngx_connection_t.fd. */
  readonly connectionFd: number;
}

/**
 * nginx 1.22.1's, LP64 (src/http/ngx_http_request.h, ngx_http_upstream.h,
 * src/event/ngx_event_connect.h, src/core/ngx_connection.h): the first
 * fields of these structures, unchanged since the HTTP cache came in
 * (0.7). Every use is checked at run time (module comment of the BPF side).
 */
export const NGINX_DEFAULT_OFFSETS: NginxLinkOffsets = {
  requestConnection: 8,
  requestUpstream: 72,
  upstreamPeer: 16,
  peerConnection: 0,
  connectionFd: 24,
};
/** Without NGX_HTTP_CACHE, ngx_http_request_t has no `cache` pointer before `upstream`. */
const REQUEST_UPSTREAM_WITHOUT_CACHE = 64;
/** Defined by builds with the HTTP cache (ngx_http_file_cache.c), absent from those configured --without-http-cache. */
const CACHE_MARKER = 'ngx_http_file_cache_open';

/** The programs and the functions they hook; all are needed (entry and return of each call the probes follow). */
export const NGINX_PROBES: ReadonlyArray<{ program: string; symbol: string; retprobe: boolean }> = [
  { program: 'uprobe_link_nginx_upstream_init', symbol: 'ngx_http_upstream_init', retprobe: false },
  { program: 'uprobe_link_nginx_upstream_init_ret', symbol: 'ngx_http_upstream_init', retprobe: true },
  { program: 'uprobe_link_nginx_connect_peer', symbol: 'ngx_event_connect_peer', retprobe: false },
  { program: 'uprobe_link_nginx_connect_peer_ret', symbol: 'ngx_event_connect_peer', retprobe: true },
  { program: 'uprobe_link_nginx_free_request', symbol: 'ngx_http_free_request', retprobe: false },
  { program: 'uprobe_link_nginx_subrequest', symbol: 'ngx_http_subrequest', retprobe: false },
  { program: 'uprobe_link_nginx_subrequest_ret', symbol: 'ngx_http_subrequest', retprobe: true },
];
export const NGINX_PROGRAMS: readonly string[] = NGINX_PROBES.map((p) => p.program);
export const NGINX_OFFSETS_MAP = 'link_nginx_offsets';

const NGINX_SYMBOLS: ReadonlySet<string> = new Set(NGINX_PROBES.map((p) => p.symbol));
/** A file defining one of these is nginx (or a fork of it): the others are then expected too. */
const NGINX_MARKERS = ['ngx_http_upstream_init', 'ngx_event_connect_peer'] as const;

const NGINX_VERSION_TEXT = /^nginx\/(\d+\.\d+\.\d+)$/;

/** A link_nginx_offsets slot (struct nginx_link_offsets, bpf/nginx_link.h). */
export function encodeNginxOffsets(o: NginxLinkOffsets): Buffer {
  const b = Buffer.alloc(NginxLinkOffsetsLayout.size);
  b.writeUInt32LE(o.requestConnection, NginxLinkOffsetsLayout.request_connection);
  b.writeUInt32LE(o.requestUpstream, NginxLinkOffsetsLayout.request_upstream);
  b.writeUInt32LE(o.upstreamPeer, NginxLinkOffsetsLayout.upstream_peer);
  b.writeUInt32LE(o.peerConnection, NginxLinkOffsetsLayout.peer_connection);
  b.writeUInt32LE(o.connectionFd, NginxLinkOffsetsLayout.connection_fd);
  return b;
}

/** "nginx/1.22.1" (NGINX_VER, in .rodata) -> "1.22.1". */
export function findNginxVersion(elf: ElfFile): string | undefined {
  const s = elf.findString('.rodata', 'nginx/', { accept: (x) => NGINX_VERSION_TEXT.test(x) });
  return s !== undefined ? NGINX_VERSION_TEXT.exec(s)?.[1] : undefined;
}

/** The nginx runtime; `override` replaces these offsets of every binary (a build whose layout differs: not a configuration setting yet). */
export function nginxRuntime(override: Partial<NginxLinkOffsets> = {}): LinkRuntime {
  return {
    rule: 'nginx',
    classify(elf: ElfFile): LinkProbes | undefined {
      // nginx's own symbols are exported: .dynsym only (its GNU hash table), never a walk of .symtab.
      const syms = elf.symbols(new Set([...NGINX_SYMBOLS, CACHE_MARKER]), { tables: ['.dynsym'] });
      if (!NGINX_MARKERS.some((n) => syms.get(n)?.type === STT_FUNC)) return undefined;
      const version = findNginxVersion(elf);
      const v = version !== undefined ? { version } : {};
      const at = new Map<string, number>();
      for (const name of NGINX_SYMBOLS) {
        const sym = syms.get(name);
        const off = sym?.type === STT_FUNC ? elf.fileOffsetOf(sym.value) : undefined;
        if (off === undefined) return { ...v, probes: [], unprobedReason: `defines no function ${name}` };
        at.set(name, off);
      }
      const offsets: NginxLinkOffsets = {
        ...NGINX_DEFAULT_OFFSETS,
        ...(syms.has(CACHE_MARKER) ? {} : { requestUpstream: REQUEST_UPSTREAM_WITHOUT_CACHE }),
        ...override,
      };
      return {
        ...v,
        probes: NGINX_PROBES.map((p) => ({ program: p.program, at: at.get(p.symbol)!, retprobe: p.retprobe, required: true })),
        offsets: { map: NGINX_OFFSETS_MAP, value: encodeNginxOffsets(offsets) },
      };
    },
  };
}

export const NGINX_RUNTIME: LinkRuntime = nginxRuntime();
