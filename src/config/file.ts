// The configuration file (`--config FILE`, or EBPF_OTEL_CONFIG): YAML read
// against the schema (CONFIG_SCHEMA, or one built for another protocol list). Every problem is collected and reported at once, one
// line each, `FILE:LINE:COL: key.path: message`, like a compiler; a file with
// any problem is refused whole (exit 2), never half applied. Unknown keys
// (with the near miss they probably are), duplicate keys, wrong types, bad
// values and YAML syntax errors are all problems. A key with no value (or
// `~`) is the same as no key: the layer below applies.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document, Node, Scalar, YAMLMap } from 'yaml';
import { isAlias, isMap, isScalar, isSeq, yaml } from './yaml';
import { PROTOCOLS } from '../protocols/registry';
import { DEFAULT_REDACTED_HEADERS, type ProtocolDefinition } from '../protocols/types';
import type { Env } from '../otel/config';
import { UsageError } from './flags';
import { CONFIG_SCHEMA, Setting, configSchema, settings, type FileConfig, type Section } from './schema';
import { describe, nearest, type ReadContext } from './shapes';
import { substitute } from './substitute';

export interface ConfigProblem {
  readonly line: number;
  readonly col: number;
  /** Dotted key of the setting (items as key[i]); none for syntax errors. */
  readonly key?: string;
  readonly message: string;
}

export function formatProblem(file: string, p: ConfigProblem): string {
  return `${file}:${p.line}:${p.col}: ${p.key !== undefined && p.key !== '' ? `${p.key}: ` : ''}${p.message}`;
}

/** A configuration file that cannot be used; the message lists every problem, one a line. */
export class ConfigFileError extends UsageError {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
  }
}

export interface ConfigFile {
  /** As given (relative paths stay relative: that is what messages show). */
  readonly path: string;
  readonly values: FileConfig;
  /** Problems that do not stop the agent (a default removed from the redaction list), formatted like errors. */
  readonly warnings: readonly string[];
  /** Where a setting's value is written, by dotted key: for problems found with the other layers (run-config.ts). */
  positionOf(key: string): { readonly line: number; readonly col: number } | undefined;
}

export function loadConfigFile(file: string, env: Env, protocols: readonly ProtocolDefinition[] = PROTOCOLS): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot read the configuration file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parseConfigFile(text, file, env, protocols);
}

/** Parses and validates `text` as the file `file` (named in messages; relative paths in it are taken from its directory). */
export function parseConfigFile(text: string, file: string, env: Env, protocols: readonly ProtocolDefinition[] = PROTOCOLS): ConfigFile {
  const schema = protocols === PROTOCOLS ? CONFIG_SCHEMA : configSchema(protocols);
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const problems: ConfigProblem[] = [];
  const pos = (offset: number) => lines.linePos(offset);

  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    // The structure after a syntax error is a guess: schema problems found in it would mislead.
    for (const e of syntax) problems.push({ ...pos(e.pos[0]), message: `YAML: ${syntaxMessage(e.code, e.message)}` });
    throw new ConfigFileError(file, sortProblems(problems));
  }

  const nodeStart = (node: Node): number => node.range?.[0] ?? 0;
  const cx: ReadContext = {
    problem: (node, key, message) => problems.push({ ...pos(nodeStart(node)), key, message }),
    deref: (raw, key, at) => {
      if (!isAlias(raw)) return raw as Node;
      const target = raw.resolve(doc as Document);
      if (target === undefined) cx.problem(at, key, `alias *${raw.source} points to no anchor`);
      return target;
    },
    substitute: (node: Scalar, t, key) => {
      const r = substitute(t, env);
      if ('problem' in r) {
        cx.problem(node, key, r.problem);
        return undefined;
      }
      return r;
    },
    lineOf: (node) => pos(nodeStart(node)).line,
    baseDir: path.dirname(path.resolve(file)),
  };

  const values: Record<string, unknown> = {};
  /** The value node of each setting read, by dotted key: for the checks across settings. */
  const nodes = new Map<string, Node>();
  const root = doc.contents;
  const empty = root === null || (isScalar(root) && (root.value === null || root.value === undefined));
  if (!empty) {
    if (isMap(root)) readSection(root, schema, '', values, nodes, cx, allKeys(schema));
    else cx.problem(root, '', `the file must be a mapping of settings (key: value), got ${describe(root)}`);
  }
  const config = values as FileConfig;
  const warnings: string[] = [];
  crossChecks(config, protocols, nodes, cx, (node, key, message) => warnings.push(formatProblem(file, { ...pos(nodeStart(node)), key, message })));
  if (problems.length > 0) throw new ConfigFileError(file, sortProblems(problems));
  const positionOf = (key: string) => {
    const node = nodes.get(key);
    return node === undefined ? undefined : pos(nodeStart(node));
  };
  return { path: file, values: config, warnings, positionOf };
}

function readSection(
  map: YAMLMap,
  section: Section,
  prefix: string,
  out: Record<string, unknown>,
  nodes: Map<string, Node>,
  cx: ReadContext,
  keys: readonly string[],
): void {
  const seen = new Map<string, Node>();
  for (const pair of map.items) {
    const keyNode = pair.key as Node | null;
    if (!keyNode || !isScalar(keyNode) || typeof keyNode.value !== 'string') {
      cx.problem(keyNode ?? map, prefix.slice(0, -1), `keys must be names, got ${keyNode ? describe(keyNode) : 'nothing'}`);
      continue;
    }
    const k = keyNode.value;
    const key = prefix + k;
    const first = seen.get(k);
    if (first) {
      cx.problem(keyNode, key, `duplicate key (first at line ${cx.lineOf(first)})`);
      continue;
    }
    seen.set(k, keyNode);
    const entry = Object.hasOwn(section, k) ? section[k] : undefined;
    if (entry === undefined) {
      cx.problem(keyNode, key, unknownKeyMessage(k, section, keys));
      continue;
    }
    const value = pair.value === null || pair.value === undefined ? undefined : cx.deref(pair.value, key, keyNode);
    if (value === undefined || (isScalar(value) && (value.value === null || value.value === undefined))) continue; // not set
    if (entry instanceof Setting) {
      const v = entry.shape.read(value, key, cx);
      if (v !== undefined) {
        out[k] = v;
        nodes.set(key, value);
      }
    } else if (isMap(value)) {
      const sub: Record<string, unknown> = {};
      readSection(value, entry, key + '.', sub, nodes, cx, keys);
      out[k] = sub;
    } else {
      cx.problem(value, key, `expected a mapping of ${Object.keys(entry).join(', ')}, got ${describe(value)}`);
    }
  }
}

/** Every key and section of a schema by dotted path: to point a key at the section it belongs to. */
function allKeys(schema: Section): readonly string[] {
  const out = new Set<string>();
  for (const { key } of settings(schema)) {
    const parts = key.split('.');
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return [...out];
}

function unknownKeyMessage(k: string, section: Section, keys: readonly string[]): string {
  const here = Object.keys(section);
  const near = nearest(k, here);
  if (near !== undefined) return `unknown key (did you mean ${near}?)`;
  // A right name in the wrong section: `endpoint` at the top level is export.endpoint.
  const norm = (s: string) => s.toLowerCase().replace(/-/g, '_');
  const elsewhere = keys.filter((full) => norm(full.slice(full.lastIndexOf('.') + 1)) === norm(k));
  if (elsewhere.length > 0) return `unknown key here (did you mean ${elsewhere.join(' or ')}?)`;
  return `unknown key (known here: ${here.join(', ')})`;
}

function crossChecks(
  c: FileConfig,
  protocols: readonly ProtocolDefinition[],
  nodes: ReadonlyMap<string, Node>,
  cx: ReadContext,
  warn: (node: Node, key: string, message: string) => void,
): void {
  const redacted = { names: c.redaction?.headers ?? DEFAULT_REDACTED_HEADERS, fromFile: c.redaction?.headers !== undefined };
  for (const p of protocols) {
    const config = p.config;
    if (config?.check === undefined || c[config.section] === undefined) continue;
    config.check(c[config.section], redacted, (rel, index, message) => {
      const key = `${config.section}.${rel}`;
      const node = nodes.get(key);
      if (node === undefined) return;
      const item = index !== undefined && isSeq(node) ? (node.items[index] as Node | undefined) : undefined;
      cx.problem(item ?? node, index !== undefined ? `${key}[${index}]` : key, message);
    });
  }
  if (c.redaction?.headers !== undefined) {
    const removed = DEFAULT_REDACTED_HEADERS.filter((h) => !c.redaction!.headers!.includes(h));
    if (removed.length > 0) {
      warn(
        nodes.get('redaction.headers')!,
        'redaction.headers',
        `removes ${removed.join(', ')} from the default redaction list: their values are recorded when listed in http.capture_headers`,
      );
    }
  }
}

function syntaxMessage(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'the file holds more than one YAML document (---); use one';
  return message.split('\n')[0]!;
}

function sortProblems(ps: ConfigProblem[]): ConfigProblem[] {
  return ps.map((p, i) => ({ p, i })).sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i).map((x) => x.p);
}
