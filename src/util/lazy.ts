// A module loaded on first use instead of at start: what an agent that does
// not use it need not hold in its heap (idle RSS, issue 13). The caller
// writes the require() itself, so the module's name stays where tools that
// list dependencies look for it.

export function lazy<T>(load: () => T): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load());
}
