import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfFile } from '../../../src/capture/elf/elf';
import { NGINX_HTTP_SIGNATURE } from '../../../src/capture/links/nginx-layout';
import { encodeNginxOffsets, NGINX_DEFAULT_OFFSETS, NGINX_PROBES, NGINX_RUNTIME, nginxRuntime } from '../../../src/capture/links/nginx';

const NGINX = '/usr/sbin/nginx';

function classify(file: string, runtime = NGINX_RUNTIME) {
  const elf = ElfFile.open(file);
  try {
    return runtime.classify(elf, file);
  } finally {
    elf.close();
  }
}

/** A shared object compiled from `source` (cc is the host compiler the layout test uses too). */
function sharedObject(t: { teardown(fn: () => void): void }, source: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-elf-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'x.c'), source);
  execFileSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'x.so'), path.join(dir, 'x.c')]);
  return path.join(dir, 'x.so');
}

test("Debian's nginx: every probe at its function's file offset, version, the 1.22 offsets of a build with the HTTP cache", (t) => {
  const p = classify(NGINX);
  t.is(p?.unprobedReason, undefined);
  t.is(p?.version, '1.22.1');
  // libbpf's own resolution of a symbol (elf_find_func_offset): st_value - sh_addr + sh_offset of its section.
  const elf = ElfFile.open(NGINX);
  const text = elf.section('.text')!;
  const syms = elf.symbols(new Set(NGINX_PROBES.map((x) => x.symbol)));
  elf.close();
  const expected = NGINX_PROBES.map((x) => ({
    program: x.program,
    at: Number(syms.get(x.symbol)!.value - text.addr) + text.offset,
    retprobe: x.retprobe,
    required: true,
  }));
  t.deepEqual(p?.probes, expected);
  t.is(p?.probes.length, 7);
  t.is(p?.offsets?.map, 'link_nginx_offsets');
  // request_connection 8, request_upstream 72, upstream_peer 16, peer_connection 0, connection_fd 24.
  t.is(p?.offsets?.value.toString('hex'), '08000000' + '48000000' + '10000000' + '00000000' + '18000000' + '00000000');
});

test('an override replaces the offsets it names, the others stay', (t) => {
  const p = classify(NGINX, nginxRuntime({ connectionFd: 28 }));
  t.deepEqual(p?.offsets?.value, encodeNginxOffsets({ ...NGINX_DEFAULT_OFFSETS, connectionFd: 28 }));
});

test('not nginx: python3, node, and a module that only imports the ngx_* functions', (t) => {
  t.is(classify('/usr/bin/python3'), undefined);
  t.is(classify(process.execPath), undefined);
  const module = sharedObject(t, 'extern void ngx_http_upstream_init(void *); extern int ngx_event_connect_peer(void *);\nvoid f(void) { ngx_http_upstream_init(0); ngx_event_connect_peer(0); }\n');
  t.is(classify(module), undefined);
});

test('an nginx-like file without all the functions: recognised, not probed, with the reason', (t) => {
  const file = sharedObject(t, 'int ngx_event_connect_peer(void *pc) { return pc != 0; }\nvoid ngx_http_upstream_init(void *r) { (void)r; }\n');
  const p = classify(file);
  t.deepEqual(p, { probes: [], unprobedReason: 'defines no function ngx_http_free_request' });
});

test('a build without the HTTP cache has no `cache` pointer before r->upstream', (t) => {
  const file = sharedObject(
    t,
    ['ngx_http_upstream_init', 'ngx_event_connect_peer', 'ngx_http_free_request', 'ngx_http_subrequest'].map((n) => `void ${n}(void *p) { (void)p; }`).join('\n') +
      '\nconst char ver[] = "nginx/1.25.3";\n',
  );
  const p = classify(file);
  t.is(p?.unprobedReason, undefined);
  t.is(p?.version, '1.25.3');
  t.is(p?.probes.length, 7);
  t.deepEqual(p?.offsets?.value, encodeNginxOffsets({ ...NGINX_DEFAULT_OFFSETS, requestUpstream: 64 }));
});

test('the request signature the probes check is "HTTP" as nginx stores it (little-endian uint32)', (t) => {
  t.is(Buffer.from('HTTP', 'latin1').readUInt32LE(0), NGINX_HTTP_SIGNATURE);
});
