import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { parseDocument } from 'yaml';
import { effectiveConfig } from '../../src/cli/config-command';
import { loadConfigFile } from '../../src/config/file';
import { settings } from '../../src/config/schema';
import { ROOT } from '../helpers/agent';

const EXAMPLE = path.join(ROOT, 'deploy', 'config', 'ebpf-otel.yaml');

test('the example file loads through the real loader, without a problem or a warning', (t) => {
  const f = loadConfigFile(EXAMPLE, {});
  t.deepEqual(f.warnings, []);
  t.is(f.values.capture?.request_timeout, 30);
});

test('the example file names every setting of the schema', (t) => {
  const doc = parseDocument(fs.readFileSync(EXAMPLE, 'utf8'));
  const missing = settings()
    .map((s) => s.key)
    .filter((key) => !doc.hasIn(key.split('.')));
  t.deepEqual(missing, []);
});

test('the example file holds the built-in defaults: it changes nothing', (t) => {
  const withoutLayers = (c: Record<string, unknown>) => ({ ...c, configFile: undefined, sources: undefined });
  t.deepEqual(withoutLayers(effectiveConfig(['--config', EXAMPLE], {})), withoutLayers(effectiveConfig([], {})));
});
