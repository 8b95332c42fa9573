import test from 'ava';
import { SYSLAT_BUCKETS } from '../../src/capture/layout';
import { SyscallCollector, type SyscallSource } from '../../src/capture/syscall-collector';
import type { SyscallHistogram } from '../../src/capture/syscall-histograms';

function h(tgid: number, nr: number, count: number): SyscallHistogram {
  return { tgid, nr, err: 0, count: BigInt(count), sumNs: BigInt(count * 100), maxNs: 100n, buckets: [BigInt(count), ...new Array<bigint>(SYSLAT_BUCKETS - 1).fill(0n)] };
}

class FakeSource implements SyscallSource {
  table = new Map<string, SyscallHistogram>();
  selected = new Set<number>();
  deleted: string[] = [];
  put(x: SyscallHistogram) {
    this.table.set(`${x.tgid}:${x.nr}:${x.err}`, x);
  }
  readSyscallHistograms() {
    return [...this.table.values()];
  }
  deleteSyscallHistograms(keys: readonly SyscallHistogram[]) {
    for (const k of keys) {
      const key = `${k.tgid}:${k.nr}:${k.err}`;
      this.deleted.push(key);
      this.table.delete(key);
    }
    return keys.length;
  }
  isSelected(tgid: number) {
    return this.selected.has(tgid);
  }
}

test('selected processes: interval deltas, entries kept', (t) => {
  const src = new FakeSource();
  src.selected.add(10);
  src.put(h(10, 0, 5));
  const c = new SyscallCollector(src);
  t.deepEqual(c.collect().map((d) => [d.tgid, d.nr, d.count]), [[10, 0, 5]]);
  src.put(h(10, 0, 7));
  t.deepEqual(c.collect().map((d) => d.count), [2]);
  t.deepEqual(c.collect(), []);
  t.deepEqual(src.deleted, []);
  t.like(c.stats, { reads: 3, entries: 1, deleted: 0, discarded: 0 });
});

test('an exited process is read once more, then its entries are deleted; a reused pid starts from zero', (t) => {
  const src = new FakeSource();
  src.selected.add(10);
  src.put(h(10, 0, 5));
  const c = new SyscallCollector(src);
  c.collect();
  src.put(h(10, 0, 9));
  src.put(h(10, 1, 1));
  src.selected.delete(10); // the exit deselects it too
  c.processExited(10);
  t.is(c.pendingExits, 1);
  t.deepEqual(c.collect().map((d) => [d.nr, d.count]), [[0, 4], [1, 1]], 'the final interval is reported');
  t.deepEqual(src.deleted.sort(), ['10:0:0', '10:1:0']);
  t.is(c.pendingExits, 0);
  // The pid comes back as a new selected process.
  src.selected.add(10);
  src.put(h(10, 0, 2));
  t.deepEqual(c.collect().map((d) => d.count), [2]);
  t.like(c.stats, { deleted: 2, discarded: 0 });
});

test('entries of an unselected process are held back one read, then discarded unreported', (t) => {
  const src = new FakeSource();
  src.put(h(20, 0, 3));
  const c = new SyscallCollector(src);
  t.deepEqual(c.collect(), [], 'not reported while not selected');
  t.deepEqual(src.deleted, [], 'held: user space may confirm it a moment later');
  // Confirmed: it is reported from its first call.
  src.selected.add(20);
  t.deepEqual(c.collect().map((d) => d.count), [3]);
  // Another one never confirmed: discarded at the second read.
  src.put(h(30, 0, 1));
  c.collect();
  c.collect();
  t.deepEqual(src.deleted, ['30:0:0']);
  t.is(c.stats.discarded, 1);
});

test('a failed read is counted and thrown; nothing is forgotten', (t) => {
  const src = new FakeSource();
  src.selected.add(1);
  src.put(h(1, 0, 1));
  const c = new SyscallCollector(src);
  c.processExited(1);
  src.readSyscallHistograms = () => {
    throw new Error('EPERM');
  };
  t.throws(() => c.collect(), { message: 'EPERM' });
  t.is(c.stats.readErrors, 1);
  t.is(c.pendingExits, 1, 'the exit still waits for its final read');
});
