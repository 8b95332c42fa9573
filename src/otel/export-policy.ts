// What every OTLP export does when the collector fails: one policy for spans,
// metrics and log records, over gRPC and over HTTP. Every export goes
// through one of our two transports (otlp-transport.ts) and RetryingExporter
// (export.ts), so these numbers are the only ones that decide how fast export
// recovers after an outage and how long shutdown may take.
//
// The goal they serve: whatever the length of an outage, every signal flows
// again within RECOVERY_BOUND_MS of the collector's return. So no wait in the
// export path may grow with the outage:
// - gRPC: one HTTP/2 session per transport, made when an export needs one
//   and none is open, reused while it lives. A session that failed (error,
//   GOAWAY, close) is forgotten at once and the next attempt connects anew: no
//   reconnect backoff of its own (grpc-js's grew to 120 s by default, and a
//   call made during it failed without trying; after a 60 s outage the next
//   connection came up to tens of seconds after the collector was back). The
//   only wait between connection attempts is our retry backoff below. A
//   session to a collector that vanished without a FIN is found out by a
//   PING that goes unanswered (GRPC_SESSION_OPTIONS.pingTimeoutMillis), sent
//   after a call's deadline or when a session with calls under way has been
//   silent for idleTimeoutMillis; an idle session is closed after that long.
//   The deadline (the export timeout) cuts each call.
// - HTTP: keep-alive sockets; a pooled socket to a collector that went away
//   is closed by its FIN/RST, or by the idle timeout below, and a request on
//   a socket that hangs is cut by the export timeout (the socket is destroyed).
// - Our retries: jittered exponential backoff as the official exporters do
//   (1 s x1.5, +/-20%), but capped at 2 s (theirs: 5 s), jitter included,
//   and bounded by the export timeout (the export then fails and the next
//   batch starts at once). So the collector's return is tried within 2 s
//   (every retry connects anew if it must): under RECOVERY_BOUND_MS with room
//   for the connection itself. With the 5 s cap and grpc-js's reconnect
//   backoff (then capped at 1 s) the worst case came to about 5.3 s. A
//   RetryInfo delay the server sends is honoured as it is: the server asked
//   for it.
// - Metrics: a failed collection is exported again after
//   METRIC_RETRY_INTERVAL_MS instead of the export interval (60 s by default),
//   until one succeeds.
// - Shutdown: one bound (the shutdown_timeout setting, SHUTDOWN_TIMEOUT_MS by
//   default) for the final flush of all three signals; then every request
//   still under way is cancelled, so nothing keeps the process alive past it,
//   and Telemetry.shutdownSummary() says what each signal lost.

import type { RetryConfig } from './config';

/** Every signal flows again within this long after the collector is back (tested in test/otel/recovery.test.ts). */
export const RECOVERY_BOUND_MS = 5000;

/** Retries of one export (spans, log records, metrics; both transports). OTEL_EXPORTER_OTLP_TIMEOUT bounds them all. */
export const DEFAULT_RETRY: RetryConfig = {
  maxAttempts: 5,
  initialBackoffMillis: 1000,
  maxBackoffMillis: 2000,
  backoffMultiplier: 1.5,
  jitter: 0.2,
};

/** HTTP/2 sessions of every OTLP/gRPC transport (otlp-transport.ts). */
export const GRPC_SESSION_OPTIONS = {
  // A session silent this long is closed if idle, PINGed if calls wait on it.
  idleTimeoutMillis: 15_000,
  // A PING unanswered this long: the collector is gone; the session is destroyed and its calls fail as UNAVAILABLE.
  pingTimeoutMillis: 2000,
  // TCP keep-alive probes on the session's socket start after 1 s idle, as on OTLP/HTTP's pooled sockets.
  tcpKeepAliveMillis: 1000,
} as const;

/** node:http(s) Agent options of every OTLP/HTTP transport (TLS options are added per endpoint). */
export const HTTP_AGENT_OPTIONS = {
  keepAlive: true,
  // TCP keep-alive probes on pooled sockets start after 1 s idle.
  keepAliveMsecs: 1000,
  // A pooled socket idle this long is closed: one to a collector that vanished without a FIN is not reused.
  timeout: 15_000,
  // The most recently used socket first: a socket that sat idle is the one left to time out.
  scheduling: 'lifo',
} as const;

/** After a metric export fails, the next collection and export come this soon (if sooner than the interval). */
export const METRIC_RETRY_INTERVAL_MS = 2000;

/** Default bound of the final flush at shutdown, all signals together (the shutdown_timeout setting). */
export const SHUTDOWN_TIMEOUT_MS = 5000;
