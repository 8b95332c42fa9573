// package.json says what runs: `dependencies` are exactly the packages the
// compiled agent (dist/src, what bin/ebpf-otel and the runtime image run)
// requires, and tests and benchmarks require nothing undeclared. A package
// that resolves only through hoisting, or a runtime dependency nothing at run
// time requires, fails here. Type-only imports are erased by tsc and so need
// no runtime dependency: this reads the compiled JavaScript, not the sources.

import test from 'ava';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';

const DIST = path.resolve(__dirname, '..');
const ROOT = path.resolve(DIST, '..');

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...jsFiles(p));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** A call of require or require.resolve with a literal specifier, as tsc emits imports. */
const REQUIRE = /\brequire(?:\.resolve)?\(\s*(['"])([^'"]+)\1\s*\)/g;

/** The package a bare specifier names ('@scope/name/sub/path' -> '@scope/name'), or undefined for relative paths and builtins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  if (specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (builtinModules.includes(name)) return undefined;
  return name;
}

/** Package name -> the files (relative to dist/) that require it. */
function requiredPackages(dirs: readonly string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const file of jsFiles(path.join(DIST, dir))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(REQUIRE)) {
        const name = packageOf(m[2]!);
        if (name === undefined) continue;
        const files = found.get(name) ?? [];
        files.push(path.relative(DIST, file));
        found.set(name, files);
      }
    }
  }
  return found;
}

test('packageOf: scoped and plain packages, subpaths, builtins and relative paths', (t) => {
  t.is(packageOf('@opentelemetry/semantic-conventions/incubating'), '@opentelemetry/semantic-conventions');
  t.is(packageOf('undici/lib/llhttp/constants'), 'undici');
  t.is(packageOf('yaml'), 'yaml');
  t.is(packageOf('node:fs'), undefined);
  t.is(packageOf('fs'), undefined);
  t.is(packageOf('../../../package.json'), undefined);
});

test('dependencies are exactly the packages dist/src requires at run time', (t) => {
  const required = requiredPackages(['src']);
  const declared = Object.keys(pkg.dependencies ?? {});
  const undeclared = [...required.keys()].filter((n) => !declared.includes(n)).sort();
  t.deepEqual(
    undeclared,
    [],
    `required at run time but not in dependencies: ${undeclared.map((n) => `${n} (${required.get(n)!.join(', ')})`).join('; ')}`,
  );
  const unused = declared.filter((n) => !required.has(n)).sort();
  t.deepEqual(unused, [], `in dependencies but never required by dist/src (a devDependency, or not needed): ${unused.join(', ')}`);
});

test('tests and benchmarks require only declared packages', (t) => {
  const required = requiredPackages(['test', 'bench']);
  const declared = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
  const undeclared = [...required.keys()].filter((n) => !declared.includes(n)).sort();
  t.deepEqual(
    undeclared,
    [],
    `required by tests or benchmarks but not declared: ${undeclared.map((n) => `${n} (${required.get(n)![0]})`).join('; ')}`,
  );
});

test('no package is both a dependency and a devDependency', (t) => {
  const dev = Object.keys(pkg.devDependencies ?? {});
  t.deepEqual(Object.keys(pkg.dependencies ?? {}).filter((n) => dev.includes(n)), []);
});
