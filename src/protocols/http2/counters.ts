// HTTP/2's own counters, kept in its sessions' stats beside the common ones
// and exported as ebpf_otel.protocol.<name> with ebpf_otel.protocol=http2.

import type { ProtocolCounter, ProtocolStats } from '../types';

export const HTTP2_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'hpackUnknownFields',
    name: 'hpack_unknown_fields',
    unit: '{field}',
    description: 'HTTP/2 header fields that referred to HPACK dynamic-table entries the agent never saw (connection joined mid-stream, or a header block lost): recorded as unknown, never guessed.',
  },
  {
    field: 'hpackErrors',
    name: 'hpack_errors',
    unit: '{error}',
    description: 'HTTP/2 header blocks HPACK could not decode (a peer would have closed the connection); later blocks of that direction are unknown.',
  },
  {
    field: 'streamsBeforeAttach',
    name: 'streams_before_attach',
    unit: '{stream}',
    description: 'HTTP/2 streams opened before the agent joined the connection (or before a resync): not recorded, since their request head was not seen.',
  },
  {
    field: 'streamsUnknown',
    name: 'streams_unknown',
    unit: '{stream}',
    description: 'HTTP/2 streams whose request head could not be decoded at all: not recorded.',
  },
  {
    field: 'streamsOverLimit',
    name: 'streams_over_limit',
    unit: '{stream}',
    description: 'HTTP/2 streams not followed because their connection already had the most streams in flight the agent follows (1024).',
  },
  {
    field: 'streamsDropped',
    name: 'streams_dropped',
    unit: '{stream}',
    description: 'HTTP/2 streams in flight when a frame reader lost the frame boundary (a capture gap or a connection error): dropped, never recorded with a guessed outcome.',
  },
  {
    field: 'gapsUnskippable',
    name: 'unskippable_gaps',
    unit: '{gap}',
    description: 'Capture gaps in an HTTP/2 connection outside DATA payloads (frame headers, header blocks): the reader resynchronises on a provable frame boundary.',
  },
  {
    field: 'headerBlocksOverBound',
    name: 'header_blocks_over_bound',
    unit: '{block}',
    description: 'HTTP/2 header blocks larger than the agent keeps (64 KiB): not decoded; that direction\'s HPACK table is unknown from there, the streams in flight recorded only from an end seen.',
  },
  {
    field: 'parseCacheResets',
    name: 'parse_cache_resets',
    unit: '{reset}',
    description: 'Times a parse cache (routes by path, hosts) reached its entry bound and was emptied, per protocol: many distinct paths or hosts, each parsed afresh.',
  },
  {
    field: 'pushedStreams',
    name: 'pushed_streams',
    unit: '{stream}',
    description: 'HTTP/2 server pushes (PUSH_PROMISE) seen: pushed streams are not recorded.',
  },
];

/** The stats of an HTTP/2 session: the common counters and HTTP/2's own. */
export type Http2Stats = ProtocolStats & {
  hpackUnknownFields: number;
  hpackErrors: number;
  streamsBeforeAttach: number;
  streamsUnknown: number;
  streamsOverLimit: number;
  streamsDropped: number;
  gapsUnskippable: number;
  pushedStreams: number;
  parseCacheResets: number;
  headerBlocksOverBound: number;
};
