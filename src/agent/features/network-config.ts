// TCP health and flows: the `network` section of the configuration file and
// the flags above it. Both families are on by default: they cost nothing per
// syscall beyond what socket capture already pays.

import { CAPTURE_DEFAULTS } from '../../capture/capture-engine';
import { flagString, positiveInt } from '../../config/flags';
import { setting } from '../../config/setting';
import { bool, int } from '../../config/shapes';
import type { FeatureConfig } from '../feature';
import type { NetworkFeatureOptions } from './network';

export const NETWORK_DEFAULTS = { maxPeersPerProcess: 100, tcpTableSize: CAPTURE_DEFAULTS.tcpPeerEntries } as const;

interface NetworkFile {
  readonly tcp?: boolean;
  readonly flows?: boolean;
  readonly max_peers?: number;
  readonly tcp_table_size?: number;
}

export const NETWORK_CONFIG: FeatureConfig<NetworkFeatureOptions> = {
  section: 'network',
  settings: {
    tcp: setting(bool(), "TCP health metrics `ebpf_otel.tcp.connection.*` (off: the kernel's TCP programs are not loaded)", { default: 'true', flags: ['--no-tcp-metrics'] }),
    flows: setting(bool(), 'flow metrics `ebpf_otel.network.flow.*`', { default: 'true', flags: ['--no-flow-metrics'] }),
    max_peers: setting(int(1, 1 << 20), 'peers per process with series of their own; the rest fold into `otel.metric.overflow=true`', {
      default: String(NETWORK_DEFAULTS.maxPeersPerProcess),
      flags: ['--network-max-peers'],
    }),
    tcp_table_size: setting(int(1, 1 << 20), '(process, peer) keys the kernel counts TCP health for; the rest fold per process, counted', {
      default: String(NETWORK_DEFAULTS.tcpTableSize),
      flags: ['--tcp-table-size'],
    }),
  },
  flags: {
    'no-tcp-metrics': { type: 'boolean' },
    'no-flow-metrics': { type: 'boolean' },
    'network-max-peers': { type: 'string' },
    'tcp-table-size': { type: 'string' },
  },
  usage: [
    'TCP health and flows (ebpf_otel.tcp.connection.*, ebpf_otel.network.flow.*; on by default):',
    "  --no-tcp-metrics         no TCP health metrics (the kernel's TCP programs are not loaded)",
    '  --no-flow-metrics        no flow metrics',
    `  --network-max-peers N    peers per process with series of their own (default ${NETWORK_DEFAULTS.maxPeersPerProcess}); the rest: otel.metric.overflow=true`,
    `  --tcp-table-size N       (process, peer) keys the kernel counts TCP health for (default ${NETWORK_DEFAULTS.tcpTableSize}); the rest fold per process`,
  ],
  resolve(file, flags): NetworkFeatureOptions {
    const f = (file ?? {}) as NetworkFile;
    const str = (name: string) => flagString(flags, name);
    const maxPeers = str('network-max-peers');
    const tableSize = str('tcp-table-size');
    const tcpPeerEntries = tableSize !== undefined ? positiveInt('--tcp-table-size', tableSize, 1 << 20) : (f.tcp_table_size ?? NETWORK_DEFAULTS.tcpTableSize);
    return {
      tcp: flags['no-tcp-metrics'] === true ? false : (f.tcp ?? true),
      flows: flags['no-flow-metrics'] === true ? false : (f.flows ?? true),
      maxPeersPerProcess: maxPeers !== undefined ? positiveInt('--network-max-peers', maxPeers, 1 << 20) : (f.max_peers ?? NETWORK_DEFAULTS.maxPeersPerProcess),
      tcpPeerEntries,
    };
  },
};
