// Byte layout of bpf/nginx_link.h (struct nginx_link_offsets, one slot per
// nginx binary), checked against the C header by test/capture/layout.test.ts.

export const NGINX_LINK_BINARIES = 64;
/** ngx_http_request_t.signature of a live request: NGX_HTTP_MODULE, "HTTP". */
export const NGINX_HTTP_SIGNATURE = 0x50545448;

export const NginxLinkOffsetsLayout = {
  size: 24,
  request_connection: 0,
  request_upstream: 4,
  upstream_peer: 8,
  peer_connection: 12,
  connection_fd: 16,
} as const;
