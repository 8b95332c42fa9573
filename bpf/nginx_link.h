/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * nginx upstream links (group "links", bpf/uprobes/nginx_link.bpf.h): where
 * the probes find what they read in an nginx build's structures. User space
 * writes one slot of the `link_nginx_offsets` map per nginx binary before attaching
 * its probes (src/capture/links/nginx.ts); the slot index is every probe's
 * attach cookie. Included by socket_trace.h; mirrored by
 * src/capture/links/nginx-layout.ts (checked by test/capture/layout.test.ts).
 */
#ifndef EBPF_OTEL_NGINX_LINK_H
#define EBPF_OTEL_NGINX_LINK_H

/* nginx binaries probed at once (slots of the link_nginx_offsets map). */
#define NGINX_LINK_BINARIES 64

/* ngx_http_request_t.signature of a live request: NGX_HTTP_MODULE, "HTTP". */
#define NGINX_HTTP_SIGNATURE 0x50545448

/* Byte offsets in nginx's structures (nginx 1.22.1 on LP64 in brackets). */
struct nginx_link_offsets {
	__u32 request_connection; /* ngx_http_request_t.connection [8], after the uint32 signature at 0 */
	__u32 request_upstream;   /* ngx_http_request_t.upstream [72; 64 when built without the HTTP cache] */
	__u32 upstream_peer;      /* ngx_http_upstream_t.peer, an ngx_peer_connection_t [16] */
	__u32 peer_connection;    /* ngx_peer_connection_t.connection [0] */
	__u32 connection_fd;      /* ngx_connection_t.fd [24] */
	__u32 _pad;
};

#endif /* EBPF_OTEL_NGINX_LINK_H */
