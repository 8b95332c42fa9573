// HTTP/1's own counters, kept in its sessions' stats beside the common ones
// and exported as ebpf_otel.protocol.<name> with ebpf_otel.protocol=http1.

import type { ProtocolCounter, ProtocolStats } from '../types';

export const HTTP1_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'headerValuesDropped',
    name: 'header_values_dropped',
    unit: '{value}',
    description: 'Configured header values left out of spans (too long, too many, not text), per protocol.',
  },
  {
    field: 'pipelinedGivenUp',
    name: 'pipelined_requests_given_up',
    unit: '{request}',
    description: 'Pipelined requests given up because the requests waiting on their connection were past the count or byte bound (no record; their responses are consumed in order), per protocol.',
  },
  {
    field: 'requestsTruncated',
    name: 'truncated_requests',
    unit: '{request}',
    description: 'Records of requests not parsed to their end (malformed, past the head bounds, or not captured), per protocol.',
  },
  {
    field: 'parseCacheResets',
    name: 'parse_cache_resets',
    unit: '{reset}',
    description: 'Times a parse cache (routes by path, hosts) reached its entry bound and was emptied, per protocol: many distinct paths or hosts, each parsed afresh.',
  },
];

/** The stats of an HTTP/1 session: the common counters and HTTP/1's own. */
export type Http1Stats = ProtocolStats & { headerValuesDropped: number; pipelinedGivenUp: number; requestsTruncated: number; parseCacheResets: number };
