// Byte layout of bpf/tcp_health.h: the records of the kernel tables TCP
// health and flows read each interval (native readTcpPeers() and
// readConnections()). Re-exported by layout.ts; checked by
// test/capture/layout.test.ts like the rest.

/** struct conn_record: a conn_info key (tgid << 32 | fd) and its struct connection, flattened. */
export const ConnRecordLayout = {
  size: 120,
  key: 0,
  conn_id: 8,
  bytes_sent: 16,
  bytes_recv: 24,
  sk: 32,
  tuple: 40,
  netns: 80,
  mode: 84,
  mode_seq: 88,
  role: 92,
  flags: 93,
  tls_sent: 96,
  tls_recv: 104,
  tls_cipher_sent_ns: 112,
} as const;

/** struct tcp_peer_record: struct tcp_peer_key then struct tcp_peer_stats, flattened. */
export const TcpPeerRecordLayout = {
  size: 352,
  tgid: 0,
  role: 4,
  flags: 5,
  family: 6,
  port: 8,
  err: 12,
  addr: 16,
  attempts: 32,
  established: 40,
  failed: 48,
  resets_sent: 56,
  resets_recv: 64,
  retransmits: 72,
  closed: 80,
  lifetime_sum_ns: 88,
  lifetime_buckets: 96,
} as const;

export const TCP_PEER_F_OVERFLOW = 0x1;
export const TCP_PEER_F_FAILURE = 0x2;
export const TCP_LIFETIME_MIN_SHIFT = 14;
export const TCP_LIFETIME_MAX_SHIFT = 44;
export const TCP_LIFETIME_BUCKETS = TCP_LIFETIME_MAX_SHIFT - TCP_LIFETIME_MIN_SHIFT + 2;
