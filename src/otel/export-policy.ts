// What every OTLP export does when the collector fails: one policy for spans,
// metrics and log records, over gRPC and over HTTP. Every export goes
// through one of our two transports (otlp-transport.ts) and RetryingExporter
// (export.ts), so these numbers are the only ones that decide how fast export
// recovers after an outage and how long shutdown may take.
//
// The goal they serve: whatever the length of an outage, every signal flows
// again within RECOVERY_BOUND_MS of the collector's return. So no wait in the
// export path may grow with the outage:
// - gRPC: grpc-js backs off reconnecting a channel 1 s x1.6 up to 120 s by
//   default, and a call made while the channel is in that backoff fails at
//   once without trying. After a 60 s outage the next connection attempt came
//   up to tens of seconds after the collector was back. Capped here at 1 s
//   (grpc-js applies +/-20% jitter); grpc-js takes no
//   grpc.min_reconnect_backoff_ms (a C-core option).
// - HTTP: keep-alive sockets; a pooled socket to a collector that went away
//   is closed by its FIN/RST, or by the idle timeout below, and a request on
//   a socket that hangs is cut by the export timeout (the socket is destroyed).
// - Our retries: jittered exponential backoff as the official exporters do
//   (1 s x1.5, +/-20%), but capped at 2 s (theirs: 5 s), jitter included,
//   and bounded by the export timeout (the export then fails and the next
//   batch starts at once). So the collector's return is tried within 2 s,
//   plus at most one gRPC reconnect backoff (1.2 s): under RECOVERY_BOUND_MS
//   with room for the connection itself. With the 5 s cap the worst case
//   came to about 5.3 s (measured up to 4.8 s). A RetryInfo delay the
//   server sends is honoured as it is: the server asked for it.
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

/** grpc-js channel options of every OTLP/gRPC channel: reconnect backoff 1 s, never more. */
export const GRPC_RECONNECT_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 1000,
  'grpc.max_reconnect_backoff_ms': 1000,
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
