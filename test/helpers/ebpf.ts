// eBPF tests need root and the built BPF object (inside the native addon).
// Outside that they skip with the reason, except under REQUIRE_EBPF=1 (CI on
// a capable machine), where the same tests fail instead: a missing
// prerequisite there is a broken build, not a reason to go green.
//
//   import { ebpfTest } from '../helpers/ebpf';
//   ebpfTest('attaches', (t) => { ... });
//   ebpfTest.serial('...', ...);

import test, { type ImplementationFn } from 'ava';
import * as fs from 'node:fs';

import { nativeBindingPath } from '../../src/capture/native-binding';

export const ebpfRequired = process.env['REQUIRE_EBPF'] === '1';

/** Why eBPF tests cannot run here, or undefined when they can. */
export function ebpfUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `eBPF needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'eBPF tests need root (uid 0)';
  const addon = nativeBindingPath();
  if (!fs.existsSync(addon)) return `the BPF object and native addon are not built (${addon}): run make bpf native`;
  return undefined;
}

type Impl = ImplementationFn<[], unknown>;

export interface EbpfTestFn {
  (title: string, implementation: Impl): void;
  serial(title: string, implementation: Impl): void;
}

function makeEbpfTest(): EbpfTestFn {
  const reason = ebpfUnavailableReason();
  if (reason === undefined) {
    return Object.assign((title: string, impl: Impl) => test(title, impl), {
      serial: (title: string, impl: Impl) => test.serial(title, impl),
    });
  }
  if (ebpfRequired) {
    const failing = (t: Parameters<Impl>[0]) => {
      t.fail(`REQUIRE_EBPF=1 but ${reason}`);
    };
    return Object.assign((title: string, _impl: Impl) => test(title, failing), {
      serial: (title: string, _impl: Impl) => test.serial(title, failing),
    });
  }
  const skipped = (title: string) => `${title} (skipped: ${reason})`;
  return Object.assign((title: string, impl: Impl) => test.skip(skipped(title), impl), {
    serial: (title: string, impl: Impl) => test.serial.skip(skipped(title), impl),
  });
}

export const ebpfTest: EbpfTestFn = makeEbpfTest();
