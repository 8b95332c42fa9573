// HTTP/2 (RFC 9113, HPACK RFC 7541) and gRPC over it: detection, sessions
// and records. See README.md.

import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { HTTP_INSTRUMENTS } from '../http/semantics';
import { HTTP2_COUNTERS } from './counters';
import { GRPC_INSTRUMENTS } from './record';
import { detectHttp2 } from './detect';
import { Http2Session, type Http2Options } from './session';

/**
 * Bytes detection looks at. Joined mid-stream, a boundary is proven only by
 * whole frames ending where the syscall's bytes end (detect.ts), so
 * detection must see whole syscalls of a usual size.
 */
export const HTTP2_MAX_DETECT_BYTES = 64 * 1024;

export const http2Protocol: ProtocolDefinition<Http2Options> = {
  id: 'http2',
  networkProtocolName: 'http',
  maxDetectBytes: HTTP2_MAX_DETECT_BYTES,
  // An HTTP/1.1 connection upgraded to cleartext HTTP/2 (RFC 7540 §3.2) is handed over.
  upgradeTokens: ['h2c'],
  counters: HTTP2_COUNTERS,
  instruments: [...Object.values(HTTP_INSTRUMENTS).flatMap((side) => Object.values(side)), GRPC_INSTRUMENTS.server, GRPC_INSTRUMENTS.client],
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
    return detectHttp2(side, data, conn);
  },
  createSession(conn: ConnectionInfo, requestSide: Side, options: Http2Options, observer?: SessionObserver): ProtocolSession {
    return new Http2Session(conn, requestSide, options, observer);
  },
};

export type { Http2Options } from './session';
