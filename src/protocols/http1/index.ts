// HTTP/1.0 and HTTP/1.1 (RFC 9112): detection, sessions and records. See README.md.

import { HTTP1_COUNTERS } from './counters';
import { HTTP_INSTRUMENTS } from '../http/semantics';
import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { HTTP1_CONFIG, type Http1Options } from './config';
import { classifyRequestLine, classifyStatusLine } from './detect';
import { checkedLlhttp } from './llhttp';
import { Http1Session } from './session';

/** Bytes detection looks at: a request line longer than this is still recognised by its origin-form start. */
export const HTTP1_MAX_DETECT_BYTES = 1024;

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');


export const http1Protocol: ProtocolDefinition<Http1Options> = {
  id: 'http1',
  networkProtocolName: 'http',
  maxDetectBytes: HTTP1_MAX_DETECT_BYTES,
  counters: HTTP1_COUNTERS,
  instruments: Object.values(HTTP_INSTRUMENTS).flatMap((side) => Object.values(side)),
  config: HTTP1_CONFIG,
  detect(side: Side, data: Buffer): Detection {
    const head = data.subarray(0, HTTP1_MAX_DETECT_BYTES);
    const request = classifyRequestLine(head, HTTP1_MAX_DETECT_BYTES);
    if (request === 'match') return { result: 'match', requestSide: side };
    const response = classifyStatusLine(head);
    if (response === 'match') return { result: 'match', requestSide: other(side) };
    return request === 'more' || response === 'more' ? { result: 'more' } : { result: 'no' };
  },
  createSession(conn: ConnectionInfo, requestSide: Side, options: Http1Options, observer?: SessionObserver): ProtocolSession {
    return new Http1Session(conn, requestSide, options, observer);
  },
  selfCheck(): void {
    checkedLlhttp();
  },
};

export type { Http1Options } from './config';
