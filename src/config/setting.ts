// One setting of the configuration file: its value type, documentation,
// default and the variables and flags above it. The schema (schema.ts) is a
// tree of these; protocols declare their own sections with the same pieces
// (src/protocols/<id>/config.ts), so the loader, the generated table and the
// example file cover them without an edit here.

import type { Shape } from './shapes';

export class Setting<T> {
  constructor(
    readonly shape: Shape<T>,
    /** One line for the documentation table. */
    readonly doc: string,
    /** The value without any layer setting it, as documented. */
    readonly defaultText: string,
    /** Variables that override the file (the highest of them applies). */
    readonly env: readonly string[],
    /** Flags that override the file and the variables. */
    readonly flags: readonly string[],
  ) {}
}

export function setting<T>(shape: Shape<T>, doc: string, o: { default?: string; env?: readonly string[]; flags?: readonly string[] } = {}): Setting<T> {
  return new Setting(shape, doc, o.default ?? 'unset', o.env ?? [], o.flags ?? []);
}

export interface Section {
  readonly [key: string]: Setting<unknown> | Section;
}

/** The typed contents of a file: every key optional (absent or null is "not set"). */
export type FileValues<S> = {
  readonly [K in keyof S]?: S[K] extends Setting<infer T> ? T : FileValues<S[K]>;
};

