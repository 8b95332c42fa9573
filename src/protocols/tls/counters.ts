import type { ProtocolCounter } from '../types';

export const TLS_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'unprobedConnections',
    name: 'unprobed_connections',
    unit: '{connection}',
    description:
      'Connections whose TLS records the traced process wrote reached the agent as ciphertext (a TLS library the agent does not probe): muted, never parsed.',
  },
];
