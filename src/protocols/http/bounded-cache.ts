// A string-keyed cache with a hard entry limit, for values derived purely from
// their key (a route from a path, a parsed Host header). Traffic repeats the
// same few targets and hosts, so a hit saves the parse and its garbage; when
// the keys are unbounded (ids in paths) the cache empties itself at the limit
// rather than grow, and says so, so its owner can count it.

/** Keys longer than this are not cached: a few long unique keys must not pin much memory. */
export const MAX_CACHED_KEY_LENGTH = 256;

export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly limit: number) {}

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** Stores `value`; returns true when the cache was full and was emptied to make room. */
  set(key: string, value: V): boolean {
    if (key.length > MAX_CACHED_KEY_LENGTH) return false;
    let emptied = false;
    if (this.entries.size >= this.limit) {
      this.entries.clear();
      emptied = true;
    }
    this.entries.set(key, value);
    return emptied;
  }

  get size(): number {
    return this.entries.size;
  }
}
