// Redis's own counters, kept in its sessions' stats beside the common ones
// and exported as ebpf_otel.protocol.<name> with ebpf_otel.protocol=redis.

import type { ProtocolCounter, ProtocolStats } from '../types';

export const REDIS_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'pushMessages',
    name: 'push_messages',
    unit: '{message}',
    description:
      'Redis values that answer no command (RESP3 pushes, pub/sub messages and extra subscribe confirmations, client-side caching invalidations, MONITOR lines): counted, not recorded.',
  },
  {
    field: 'pipelinedGivenUp',
    name: 'pipelined_commands_given_up',
    unit: '{command}',
    description:
      'Redis commands not recorded because the commands waiting for replies on their connection were past the count or byte bound (their replies are consumed in order), per protocol.',
  },
  {
    field: 'commandsDropped',
    name: 'commands_dropped',
    unit: '{command}',
    description:
      'Redis commands waiting for replies when a side of their connection lost its place (a capture gap outside a value body, malformed bytes): dropped, never recorded with a guessed reply.',
  },
];

/** The stats of a Redis session: the common counters and Redis's own. */
export type RedisStats = ProtocolStats & { pushMessages: number; pipelinedGivenUp: number; commandsDropped: number };
