// Go net/http links (bpf/uprobes/go_link.bpf.h): which functions of a Go
// binary to probe and the struct offsets the programs read, per binary.
// amd64, Go 1.17 and later (register ABI). Functions are found in the
// function table (pclntab: stripped binaries too), with a probe on each
// return instruction, never a uretprobe (Go moves goroutine stacks).
//
// Offsets: from the binary's DWARF when it has some; else from a table of
// Go versions whose layouts were checked against their DWARF (only those:
// a version not in it is not probed, with the reason).

import { ELF_MACHINE, ElfError, type ElfFile } from '../elf/elf';
import { hasDwarf, structMemberOffsets } from '../elf/dwarf';
import { amd64Returns, GoPclntab } from '../elf/gopclntab';
import { goVersion } from '../tls/library';
import type { LinkProbes, LinkRuntime } from './runtime';

/** The BPF map holding one struct go_link_offsets per probed binary. */
export const GO_LINK_OFFSETS_MAP = 'link_go_offsets';

/** struct go_link_offsets (bpf/uprobes/go_link.h): u32 fields in this order. */
export const GO_LINK_OFFSETS_FIELDS = [
  'ok',
  'gGoid',
  'connRwc',
  'fdSysfd',
  'fdIsStream',
  'fdZeroReadIsEof',
  'fdIsFile',
  'netfdFamily',
  'netfdSotype',
  'pcConn',
  'respConn',
  'respReq',
  'connServer',
  'tlsConn',
] as const;
export const GO_LINK_OFFSETS_SIZE = 56;

export type GoLinkOffsets = Record<Exclude<(typeof GO_LINK_OFFSETS_FIELDS)[number], 'ok'>, number>;

/** Where each offset comes from in DWARF: struct, member. */
const DWARF_FIELDS: Record<keyof GoLinkOffsets, readonly [string, string]> = {
  gGoid: ['runtime.g', 'goid'],
  connRwc: ['net/http.conn', 'rwc'],
  fdSysfd: ['internal/poll.FD', 'Sysfd'],
  fdIsStream: ['internal/poll.FD', 'IsStream'],
  fdZeroReadIsEof: ['internal/poll.FD', 'ZeroReadIsEOF'],
  fdIsFile: ['internal/poll.FD', 'isFile'],
  netfdFamily: ['net.netFD', 'family'],
  netfdSotype: ['net.netFD', 'sotype'],
  pcConn: ['net/http.persistConn', 'conn'],
  respConn: ['net/http.response', 'conn'],
  respReq: ['net/http.response', 'req'],
  connServer: ['net/http.conn', 'server'],
  tlsConn: ['crypto/tls.Conn', 'conn'],
};

/**
 * Layouts checked against the DWARF of a binary of that version (go1.19.8,
 * linux/amd64: `test/capture/links/go.test.ts` compares them on every run).
 * Other versions are added only once checked the same way.
 */
export const VERIFIED_GO_OFFSETS: ReadonlyMap<string, GoLinkOffsets> = new Map([
  ['1.19', { gGoid: 152, connRwc: 16, fdSysfd: 16, fdIsStream: 48, fdZeroReadIsEof: 49, fdIsFile: 50, netfdFamily: 56, netfdSotype: 64, pcConn: 80, respConn: 0, respReq: 8, connServer: 0, tlsConn: 0 }],
]);

/** Functions, the program at their entry, and the program at each of their returns. */
interface GoLinkFunction {
  readonly name: string;
  readonly entry: string;
  readonly ret?: string;
}

/** The server side: without these the binary serves no net/http and is not this runtime. */
const SERVER: readonly GoLinkFunction[] = [
  { name: 'net/http.serverHandler.ServeHTTP', entry: 'uprobe_link_go_serve', ret: 'uprobe_link_go_serve_ret' },
];

/** net/http's client: absent from a binary that serves but never calls (its other clients are still linked). */
const CLIENT: readonly GoLinkFunction[] = [
  { name: 'net/http.(*persistConn).roundTrip', entry: 'uprobe_link_go_round_trip' },
];

/**
 * Every way Go writes to a socket (first argument the destination *poll.FD):
 * a write that went unseen could carry an older mark. Write is always
 * linked in when net/http is; the others are probed whenever present.
 */
const WRITES: readonly string[] = [
  'internal/poll.(*FD).Write',
  'internal/poll.(*FD).Writev',
  'internal/poll.(*FD).WriteOnce',
  'internal/poll.(*FD).WriteMsg',
  'internal/poll.SendFile',
  'internal/poll.Splice',
];
const WRITE_PROGRAM = 'uprobe_link_go_fd_write';

export interface GoLinkProbes extends LinkProbes {
  /** Where the struct offsets came from: 'DWARF', or 'table 1.19' (VERIFIED_GO_OFFSETS). */
  readonly offsetsFrom?: string;
}

export class GoLinkRuntime implements LinkRuntime {
  readonly rule = 'go' as const;

  constructor(private readonly verified: ReadonlyMap<string, GoLinkOffsets> = VERIFIED_GO_OFFSETS) {}

  classify(elf: ElfFile, file: string): GoLinkProbes | undefined {
    if (!elf.section('.go.buildinfo')) return undefined;
    const { version } = goVersion(elf);
    const v = version !== undefined ? { version } : {};
    const unprobed = (why: string): GoLinkProbes => ({ ...v, probes: [], unprobedReason: why });
    let tab: GoPclntab;
    try {
      tab = GoPclntab.read(elf, file);
    } catch (err) {
      if (!(err instanceof ElfError)) throw err;
      return unprobed(`its function table cannot be read: ${err.message}`);
    }
    const all = [...SERVER, ...CLIENT].map((f) => f.name);
    const fns = tab.find(new Set([...all, ...WRITES]));
    if (!SERVER.every((f) => fns.has(f.name))) return undefined; // no net/http server: nothing to link
    if (elf.machine !== ELF_MACHINE.x86_64) return unprobed('Go links are probed on amd64 only');
    const minor = version !== undefined ? /^1\.(\d+)/.exec(version)?.[1] : undefined;
    const registerAbi = minor !== undefined ? Number(minor) >= 17 : tab.format !== '1.16';
    if (!registerAbi) return unprobed('Go before 1.17 passes arguments on the stack: not probed');

    let offsets: GoLinkOffsets | undefined;
    let source: string;
    if (hasDwarf(elf)) {
      try {
        offsets = dwarfOffsets(elf);
      } catch (err) {
        if (!(err instanceof ElfError)) throw err;
        return unprobed(`its DWARF cannot be read: ${err.message}`);
      }
      if (!offsets) return unprobed('its DWARF lacks one of runtime.g, net/http.conn, net/http.response, net/http.persistConn, crypto/tls.Conn, internal/poll.FD, net.netFD with the fields read');
      source = 'DWARF';
    } else {
      const key = version !== undefined ? /^(\d+\.\d+)/.exec(version)?.[1] : undefined;
      offsets = key !== undefined ? this.verified.get(key) : undefined;
      if (!offsets) {
        return unprobed(
          `no DWARF (stripped) and Go ${version ?? '(version unknown)'} is not among the verified layouts (${[...this.verified.keys()].join(', ') || 'none'})`,
        );
      }
      source = `table ${key}`;
    }

    const probes: Array<LinkProbes['probes'][number]> = [];
    const client = CLIENT.every((f) => fns.has(f.name)) ? CLIENT : [];
    for (const f of [...SERVER, ...client]) {
      const fn = fns.get(f.name)!;
      const entry = elf.fileOffsetOf(fn.entry);
      if (entry === undefined) return unprobed(`${f.name} is not mapped from the file`);
      probes.push({ program: f.entry, at: entry, retprobe: false, required: true });
      if (f.ret === undefined) continue;
      let returns: bigint[];
      try {
        returns = amd64Returns(elf, tab, fn);
      } catch (err) {
        if (!(err instanceof ElfError)) throw err;
        return unprobed(`cannot read ${f.name}: ${err.message}`);
      }
      const rets = returns.map((r) => elf.fileOffsetOf(r));
      if (rets.length === 0 || rets.some((r) => r === undefined)) return unprobed(`no return instruction of ${f.name} found`);
      for (const r of rets) probes.push({ program: f.ret, at: r!, retprobe: false, required: true });
    }
    if (!fns.has(WRITES[0]!)) return unprobed(`${WRITES[0]} not found in its function table`);
    for (const name of WRITES) {
      const fn = fns.get(name);
      if (!fn) continue;
      const at = elf.fileOffsetOf(fn.entry);
      if (at === undefined) return unprobed(`${name} is not mapped from the file`);
      probes.push({ program: WRITE_PROGRAM, at, retprobe: false, required: true });
    }
    return { ...v, offsetsFrom: source, probes, offsets: { map: GO_LINK_OFFSETS_MAP, value: encodeGoLinkOffsets(offsets) } };
  }
}

/** The offsets the probes read, from DWARF; undefined when a struct or field is missing. */
export function dwarfOffsets(elf: ElfFile): GoLinkOffsets | undefined {
  const wanted = new Map<string, string[]>();
  for (const [struct, member] of Object.values(DWARF_FIELDS)) {
    const list = wanted.get(struct) ?? [];
    list.push(member);
    wanted.set(struct, list);
  }
  const found = structMemberOffsets(elf, wanted);
  if (!found) return undefined;
  const out: Partial<GoLinkOffsets> = {};
  for (const [field, [struct, member]] of Object.entries(DWARF_FIELDS) as Array<[keyof GoLinkOffsets, readonly [string, string]]>) {
    const at = found.get(struct)?.get(member);
    if (at === undefined) return undefined;
    out[field] = at;
  }
  return out as GoLinkOffsets;
}

/** struct go_link_offsets as the BPF side reads it. */
export function encodeGoLinkOffsets(o: GoLinkOffsets): Buffer {
  const b = Buffer.alloc(GO_LINK_OFFSETS_SIZE);
  GO_LINK_OFFSETS_FIELDS.forEach((f, i) => b.writeUInt32LE(f === 'ok' ? 1 : o[f], i * 4));
  return b;
}

export const goLinkRuntime: LinkRuntime = new GoLinkRuntime();
