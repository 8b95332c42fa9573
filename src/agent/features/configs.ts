// The features' configuration sections, in the order the schema lists them
// (after `resource`). A feature with settings adds its config here; the
// schema, the flags, `run --help` and RunOptions.features follow.

import type { FeatureConfig } from '../feature';
import { NETWORK_CONFIG } from './network-config';
import { SYSCALL_LATENCY_CONFIG } from './syscall-latency-config';
import { LINKING_CONFIG } from './linking-config';
import { TLS_CONFIG } from './tls-config';

export const FEATURE_CONFIGS: readonly FeatureConfig<unknown>[] = [SYSCALL_LATENCY_CONFIG, NETWORK_CONFIG, TLS_CONFIG, LINKING_CONFIG];
