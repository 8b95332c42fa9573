// The yaml package, loaded on first use. It is 0.8 MiB of heap once loaded
// (measured: bench/agent-cost --idle-only, issue 13) and only a
// configuration file or `config print --format yaml` needs it.

import type * as Yaml from 'yaml';
import { lazy } from '../util/lazy';

export const yaml = lazy(() => require('yaml') as typeof Yaml);

export const isAlias = (node: unknown): node is Yaml.Alias => yaml().isAlias(node);
export const isMap = (node: unknown): node is Yaml.YAMLMap => yaml().isMap(node);
export const isScalar = (node: unknown): node is Yaml.Scalar => yaml().isScalar(node);
export const isSeq = (node: unknown): node is Yaml.YAMLSeq => yaml().isSeq(node);
