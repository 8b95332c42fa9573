// TLS seen from outside the library: records of ciphertext at the start of a
// stream. Claimed so that no other protocol parses them, never parsed, never
// a record; muted in the kernel. See README.md.

import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { TLS_COUNTERS } from './counters';
import { detectTls, TLS_HELLO_PREFIX } from './detect';
import { TlsSession } from './session';

/**
 * What detection holds of a side that read TLS while waiting for the
 * process's own write: a ClientHello (with post-quantum key shares near
 * 2 KiB) and the client's second flight, client certificates included.
 */
export const TLS_MAX_DETECT_BYTES = 8192;

export const tlsProtocol: ProtocolDefinition = {
  id: 'tls',
  networkProtocolName: 'tls',
  maxDetectBytes: TLS_MAX_DETECT_BYTES,
  counters: TLS_COUNTERS,
  // Ciphertext makes no records.
  instruments: [],
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
    return detectTls(side, data, conn.sawStart, conn.role);
  },
  createSession(_conn: ConnectionInfo, _requestSide: Side, _options: object, observer?: SessionObserver): ProtocolSession {
    return new TlsSession(observer);
  },
};

export { TLS_HELLO_PREFIX };
