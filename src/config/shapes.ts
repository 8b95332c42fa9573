// The value types of the configuration file: each reads one YAML node into a
// typed value or reports why it cannot, at the node. The schema
// (schema.ts) is a table of these; the loader (file.ts) walks
// the document with it.
//
// String values go through ${VAR} substitution first. A number or boolean
// setting accepts a substituted string that reads as one (`port: ${PORT}`),
// never a plain quoted string: "8080" in the file is a typing mistake.

import * as path from 'node:path';
import type { Node, Scalar } from 'yaml';
import { isMap, isScalar, isSeq } from './yaml';
import { isPowerOfTwo, parseDuration } from './flags';

export interface ReadContext {
  /** Records a problem at the start of `node`, for the setting at `keyPath`. */
  problem(node: Node, keyPath: string, message: string): void;
  /** The node itself, or the one an alias points to; undefined (reported) for an alias to nothing. */
  deref(node: unknown, keyPath: string, at: Node): Node | undefined;
  /** A string after ${VAR} substitution; undefined when it failed (reported). */
  substitute(node: Scalar, text: string, keyPath: string): { value: string; substituted: boolean } | undefined;
  /** Line of a node's start (for "first at line N"). */
  lineOf(node: Node): number;
  /** Directory relative file paths are taken from (the file's own). */
  readonly baseDir: string;
}

export interface Shape<T> {
  /** What a value must be, completing "expected ...": "a whole number from 1 to 65535". */
  readonly expected: string;
  /** Short type for the documentation table. */
  readonly type: string;
  /** The value, or undefined when it is refused (every reason reported through `cx`). */
  read(node: Node, keyPath: string, cx: ReadContext): T | undefined;
}

/** What a node holds, completing "got ...". */
export function describe(node: Node): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'nothing';
    if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
    if (typeof v === 'number') return `the number ${node.source ?? String(v)}`;
    if (typeof v === 'boolean') return `the boolean ${v}`;
  }
  return 'a value of another kind';
}

type ScalarValue = { readonly value: string | number | boolean; readonly substituted: boolean };

/** The scalar's value after substitution; undefined when it is no scalar (reported as `expected`) or substitution failed. */
function scalar(node: Node, keyPath: string, cx: ReadContext, expected: string): ScalarValue | undefined {
  if (!isScalar(node) || node.value === null || node.value === undefined) {
    cx.problem(node, keyPath, `expected ${expected}, got ${describe(node)}`);
    return undefined;
  }
  const v = node.value;
  if (typeof v === 'string') return cx.substitute(node, v, keyPath);
  if (typeof v === 'number' || typeof v === 'boolean') return { value: v, substituted: false };
  cx.problem(node, keyPath, `expected ${expected}, got ${describe(node)}`);
  return undefined;
}

function wrongType(node: Node, keyPath: string, cx: ReadContext, expected: string, got: ScalarValue): undefined {
  const what = got.substituted ? `${JSON.stringify(got.value)} (after substitution)` : describe(node);
  cx.problem(node, keyPath, `expected ${expected}, got ${what}`);
  return undefined;
}

export function bool(): Shape<boolean> {
  const expected = 'true or false';
  return {
    expected,
    type: 'boolean',
    read(node, keyPath, cx) {
      const s = scalar(node, keyPath, cx, expected);
      if (s === undefined) return undefined;
      if (typeof s.value === 'boolean') return s.value;
      if (s.substituted && (s.value === 'true' || s.value === 'false')) return s.value === 'true';
      return wrongType(node, keyPath, cx, expected, s);
    },
  };
}

export function int(min: number, max: number): Shape<number> {
  const expected = `a whole number from ${min} to ${max}`;
  return {
    expected,
    type: `integer ${min}..${max}`,
    read(node, keyPath, cx) {
      const s = scalar(node, keyPath, cx, expected);
      if (s === undefined) return undefined;
      let n: number;
      if (typeof s.value === 'number') n = s.value;
      else if (s.substituted && typeof s.value === 'string' && /^-?\d+$/.test(s.value)) n = Number(s.value);
      else return wrongType(node, keyPath, cx, expected, s);
      if (!Number.isInteger(n) || n < min || n > max) return wrongType(node, keyPath, cx, expected, s);
      return n;
    },
  };
}

/** A whole number from min to max that is a power of two (sizes of kernel ring buffers). */
export function powerOfTwo(min: number, max: number): Shape<number> {
  const base = int(min, max);
  const expected = `a power of two from ${min} to ${max}`;
  return {
    expected,
    type: `power of two ${min}..${max}`,
    read(node, keyPath, cx) {
      const n = base.read(node, keyPath, cx);
      if (n === undefined) return undefined;
      if (!isPowerOfTwo(n)) {
        cx.problem(node, keyPath, `expected ${expected}, got the number ${n}`);
        return undefined;
      }
      return n;
    },
  };
}

export function ratio(): Shape<number> {
  const expected = 'a number from 0 to 1';
  return {
    expected,
    type: 'number 0..1',
    read(node, keyPath, cx) {
      const s = scalar(node, keyPath, cx, expected);
      if (s === undefined) return undefined;
      let n: number;
      if (typeof s.value === 'number') n = s.value;
      else if (s.substituted && typeof s.value === 'string' && /^\d+(\.\d+)?$/.test(s.value)) n = Number(s.value);
      else return wrongType(node, keyPath, cx, expected, s);
      if (!(n >= 0 && n <= 1)) return wrongType(node, keyPath, cx, expected, s);
      return n;
    },
  };
}

/**
 * A string, checked by `check` (which returns why it is refused) and then
 * mapped by `convert`.
 */
export function text<T = string>(
  expected: string,
  type: string,
  check: (s: string) => string | undefined = () => undefined,
  convert: (s: string, cx: ReadContext) => T = (s) => s as unknown as T,
): Shape<T> {
  return {
    expected,
    type,
    read(node, keyPath, cx) {
      const s = scalar(node, keyPath, cx, expected);
      if (s === undefined) return undefined;
      if (typeof s.value !== 'string') {
        // A header value of 42 is meant as text, but quoting it is one keystroke and removes the doubt.
        cx.problem(node, keyPath, `expected ${expected}, got ${describe(node)} (quote it if it is meant as text)`);
        return undefined;
      }
      const problem = check(s.value);
      if (problem !== undefined) {
        cx.problem(node, keyPath, problem);
        return undefined;
      }
      return convert(s.value, cx);
    },
  };
}

/** `type` names the values in the documentation table when listing them all would not read well. */
export function oneOf<const V extends string>(values: readonly V[], type?: string): Shape<V> {
  const list = values.join(', ');
  return text<V>(
    `one of ${list}`,
    type ?? values.map((v) => '`' + v + '`').join(', '),
    (s) => {
      if ((values as readonly string[]).includes(s)) return undefined;
      const guess = nearest(s, values);
      return `expected one of ${list}, got ${JSON.stringify(s)}${guess !== undefined ? ` (did you mean ${guess}?)` : ''}`;
    },
    (s) => s as V,
  );
}

/** A path; a relative one is taken from the file's directory. */
export function filePath(): Shape<string> {
  return text(
    'a file path',
    'path',
    (s) => (s === '' ? 'expected a file path, got an empty string' : undefined),
    (s, cx) => path.resolve(cx.baseDir, s),
  );
}

export function list<T>(item: Shape<T>): Shape<T[]> {
  return {
    expected: `a list of ${item.expected.replace(/^an? /, '')}`,
    type: `list of ${item.type}`,
    read(node, keyPath, cx) {
      if (!isSeq(node)) {
        cx.problem(node, keyPath, `expected a list (in brackets: [${isScalar(node) ? String(node.source ?? node.value) : '...'}]), got ${describe(node)}`);
        return undefined;
      }
      const out: T[] = [];
      let ok = true;
      node.items.forEach((raw, i) => {
        const p = `${keyPath}[${i}]`;
        const n = cx.deref(raw, p, node);
        const v = n === undefined ? undefined : item.read(n, p, cx);
        if (v === undefined) ok = false;
        else out.push(v);
      });
      return ok ? out : undefined;
    },
  };
}

/** A mapping of names to values. `keyCheck` returns why a name is refused. */
export function map<T>(value: Shape<T>, keyCheck: (k: string) => string | undefined = () => undefined): Shape<Record<string, T>> {
  return {
    expected: `a mapping of names to ${value.expected.replace(/^an? /, '')}`,
    type: `map of ${value.type}`,
    read(node, keyPath, cx) {
      if (!isMap(node)) {
        cx.problem(node, keyPath, `expected a mapping (name: value), got ${describe(node)}`);
        return undefined;
      }
      const out: Record<string, T> = {};
      const seen = new Map<string, Node>();
      let ok = true;
      for (const pair of node.items) {
        const keyNode = pair.key as Node;
        if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
          cx.problem(keyNode ?? node, keyPath, `names must be strings, got ${keyNode ? describe(keyNode) : 'nothing'}`);
          ok = false;
          continue;
        }
        const k = keyNode.value;
        const p = `${keyPath}.${k}`;
        const first = seen.get(k);
        if (first) {
          cx.problem(keyNode, p, `duplicate key (first at line ${cx.lineOf(first)})`);
          ok = false;
          continue;
        }
        seen.set(k, keyNode);
        const problem = keyCheck(k);
        if (problem !== undefined) {
          cx.problem(keyNode, p, problem);
          ok = false;
          continue;
        }
        if (pair.value === null || pair.value === undefined) {
          cx.problem(keyNode, p, `expected ${value.expected}, got nothing`);
          ok = false;
          continue;
        }
        const n = cx.deref(pair.value, p, keyNode);
        const v = n === undefined ? undefined : value.read(n, p, cx);
        if (v === undefined) ok = false;
        else out[k] = v;
      }
      return ok ? out : undefined;
    },
  };
}

/** A string, a number or a boolean, kept as written (resource attribute values). */
export function attributeValue(): Shape<string | number | boolean> {
  const expected = 'a string, a number or a boolean';
  return {
    expected,
    type: 'string, number or boolean',
    read(node, keyPath, cx) {
      const s = scalar(node, keyPath, cx, expected);
      return s?.value;
    },
  };
}

/**
 * The candidate `s` is most likely a misspelling of: equal but for case and
 * `-`/`_`, else at most 2 edits away (1 for short words). Undefined when none is close.
 */
export function nearest(s: string, candidates: readonly string[]): string | undefined {
  const norm = (x: string) => x.toLowerCase().replace(/-/g, '_');
  const ns = norm(s);
  let best: string | undefined;
  let bestDistance = ns.length >= 5 ? 3 : 2;
  for (const c of candidates) {
    const d = editDistance(ns, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment): "grcp" is 1 from "grpc". */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function headerNameProblem(s: string): string | undefined {
  return HEADER_TOKEN.test(s) ? undefined : `expected a header name (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(s)}`;
}

/** Header names compare case-insensitively: kept lower-case, as the parsers report them. */
export const headerName = () => text('a header name', 'header name', headerNameProblem, (s) => s.toLowerCase());


/** A string value refused by a check shared with the flags (flags.ts), phrased for the file. */
export const checked = (expected: string, type: string, problem: (s: string) => string | undefined) => text(expected, type, problem);


/** Seconds. The unit is required: OTEL_* variables count milliseconds, and a bare 5000 must not mean 5000 seconds. */
export function duration(o: { allowZero: boolean }): Shape<number> {
  const expected = 'a duration with its unit, such as 30s, 500ms or 2m';
  const inner = text(expected, 'duration', (s) => {
    const v = parseDuration(s, { unitRequired: true });
    if (v === undefined) return `expected ${expected}, got ${JSON.stringify(s)}`;
    if (v === 0 && !o.allowZero) return `expected a duration above zero, got ${JSON.stringify(s)}`;
    return undefined;
  }, (s) => parseDuration(s, { unitRequired: true })!);
  return {
    expected,
    type: 'duration',
    read(node, keyPath, cx) {
      if (typeof (node as { value?: unknown }).value === 'number') {
        cx.problem(node, keyPath, `expected ${expected}, got ${describe(node)} (write the unit: seconds or milliseconds?)`);
        return undefined;
      }
      return inner.read(node, keyPath, cx);
    },
  };
}

