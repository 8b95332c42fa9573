// What a session keeps of one HTTP/2 stream (one request and its response)
// until its record is made: the header fields records use, copied out of the
// decoded block, body and message counts, and how it ended.

import type { CarriedTraceContext } from '../types';
import { GrpcMessageCounter } from './grpc';

/** The fields a record uses, from one decoded header block. */
export class Http2Head {
  method: string | undefined;
  path: string | undefined;
  scheme: string | undefined;
  authority: string | undefined;
  status: number | undefined;
  contentType: string | undefined;
  userAgent: string | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  grpcTimeout: string | undefined;
  traceparent: string[] | undefined;
  tracestate: string[] | undefined;
  /** Fields that referred to HPACK dynamic-table entries never seen (mid-stream attach): their names are not known either. */
  unknown = 0;
  /** The block could not be decoded at all (HPACK error, poisoned decoder): nothing in it is known. */
  undecoded = false;
}

export class Http2Stream {
  /** Request HEADERS decoded and started (told to the observer). */
  request: Http2Head;
  /** The final (non-1xx) response HEADERS. */
  response: Http2Head | undefined;
  /** Trailers of the response (gRPC status lives here unless trailers-only). */
  trailers: Http2Head | undefined;
  requestEnded = false;
  responseEnded = false;
  requestBody = 0;
  responseBody = 0;
  /** Some body bytes of that side were lost to a gap: its size is not exact. */
  requestBodyLost = false;
  responseBodyLost = false;
  /** gRPC by the request's content-type, or (joined mid-stream) the response's. */
  grpc: boolean;
  /** gRPC message counts per side, from the HEADERS that said gRPC on. */
  grpcRequest: GrpcMessageCounter | undefined;
  grpcResponse: GrpcMessageCounter | undefined;
  /** Last frame of the stream seen (for the idle timeout). */
  lastNs: number;
  /** RST_STREAM: its error code and which side sent it. */
  resetCode: number | undefined;
  resetByRequester = false;
  traceContext: CarriedTraceContext | undefined;
  /** A capture gap took frames while it was in flight: only an end actually seen makes its record. */
  tainted = false;

  constructor(
    readonly id: number,
    readonly sequence: number,
    readonly startNs: number,
    request: Http2Head,
    grpc: boolean,
    /** Opening order in its session (0, 1, ...). */
    readonly order: number,
  ) {
    this.request = request;
    this.lastNs = startNs;
    this.grpc = grpc;
    if (grpc) {
      this.grpcRequest = new GrpcMessageCounter();
      this.grpcResponse = new GrpcMessageCounter();
    }
  }
}
