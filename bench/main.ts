// Entry point shared by the benchmarks: exit with main's code; a crash is exit 2 with its stack.

export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}

/** A flag's value as a positive number, or an error naming the flag. */
export function positive(flag: string, raw: string): number {
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`${flag} takes a positive number, got ${JSON.stringify(raw)}`);
  return n;
}
