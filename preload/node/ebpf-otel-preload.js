// SPDX-License-Identifier: Apache-2.0
/*
 * ebpf-otel-sidecar: opt-in Node.js preload that lets the agent link a Node
 * process's outgoing HTTP calls to the incoming request that caused them
 * (issue 17). Enable it with
 *
 *   NODE_OPTIONS="--require /opt/ebpf-otel/preload/node/ebpf-otel-preload.js"
 *
 * Nothing else: no dependency, no configuration, no network, no inspector;
 * it is loaded by the process itself at start-up, never injected later.
 *
 * What it does:
 * - Server side: http.Server and https.Server run each 'request' handler in
 *   an AsyncLocalStorage context holding that request's socket and response.
 * - Client side: http.request/get and https.request/get take the caller's
 *   context when the request is created (not when it is written: a
 *   keep-alive socket freed by request A is handed to queued request B from
 *   A's callbacks) and keep it on the request object.
 * - Right before an outgoing request's first bytes reach its socket, it
 *   makes one syscall the agent sees from a tracepoint: a zero-byte pwrite64
 *   whose position encodes "the client connection on fd C now serves the
 *   server request on fd S" (SET), or "...serves no request" (CLEAR) when
 *   the caller's request has ended, its socket is gone, or there is none.
 *   The agent resolves S to the one request in flight on that connection at
 *   that point of its timeline; see bpf/link_node.bpf.h for the encoding.
 *
 * Every outgoing HTTP/1 request made through node:http/https is marked, SET
 * or CLEAR, so a connection a background task reuses is never left pointing
 * at an older request. Not marked (the agent's other rules apply to them):
 * fetch/undici, http2, sockets that are not TCP.
 */
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const { AsyncLocalStorage } = require('node:async_hooks');

// The encoding, shared with bpf/link_node.bpf.h:
//   position = MAGIC << 40 | server_fd << 20 | client_fd, byte count 0.
// 13 + 20 + 20 bits: a safe integer (< 2^53), so a plain Number carries it.
const MAGIC = 0x1eb0;
const FD_BITS = 20;
const FD_SPAN = 2 ** FD_BITS;
/** server_fd of a CLEAR; also the first fd that cannot be encoded. */
const NO_SERVER = FD_SPAN - 1;
const MARK_BASE = MAGIC * 2 ** (2 * FD_BITS);

const kLoaded = Symbol.for('ebpf-otel.node-preload');
const kContext = Symbol('ebpf-otel.context');
const kMarkedOn = Symbol('ebpf-otel.marked-on');
const kTcpFd = Symbol('ebpf-otel.tcp-fd');
const EMPTY = Buffer.alloc(0);

/**
 * The fd the marks are written to: /dev/null takes a positioned write
 * without an error (measured: half the cost of a write that throws), and
 * O_CLOEXEC (libuv's default) keeps it out of child processes. The agent
 * reads only the syscall's arguments, so the fd it names does not matter;
 * without /dev/null the client socket itself is used (ESPIPE, caught).
 */
let markFd = -1;
try {
  markFd = fs.openSync('/dev/null', 'w');
} catch {
  markFd = -1;
}

const contexts = new AsyncLocalStorage();

/** The incoming request a handler (and everything it starts) serves. */
class ServerContext {
  constructor(socket, res) {
    this.socket = socket;
    this.res = res;
    this.fd = tcpFd(socket);
  }
}

/**
 * The fd of a TCP socket (a TLS socket's is its TCP connection's), cached
 * on the socket; -1 for anything else (a unix socket, a pipe, a socket
 * closed or not connected yet). Only TCP connections are followed by the
 * agent: a mark naming anything else would be rejected.
 */
function tcpFd(socket) {
  const cached = socket[kTcpFd];
  if (cached !== undefined) return cached;
  const handle = socket._handle;
  if (!handle || socket.connecting) return -1; // not cached: it may connect later
  const family = socket.remoteFamily; // one getpeername per socket, cached by net
  const fd = (family === 'IPv4' || family === 'IPv6') && typeof handle.fd === 'number' ? handle.fd : -1;
  socket[kTcpFd] = fd;
  return fd;
}

/** The server fd the context still stands for, or NO_SERVER. */
function serverFdOf(context) {
  if (context === undefined || !(context instanceof ServerContext)) return NO_SERVER;
  const { socket, res, fd } = context;
  if (fd < 0 || fd >= NO_SERVER || res.writableEnded || socket.destroyed) return NO_SERVER;
  const handle = socket._handle;
  if (!handle || handle.fd !== fd) return NO_SERVER;
  return fd;
}

/** One zero-byte pwrite64 the agent's tracepoint decodes. */
function mark(clientFd, serverFd) {
  const position = MARK_BASE + serverFd * FD_SPAN + clientFd;
  if (markFd >= 0) {
    try {
      fs.writeSync(markFd, EMPTY, 0, 0, position);
    } catch {
      // The application closed our fd (and it may name anything now): the
      // syscall was made all the same, which is all the agent needs.
    }
    return;
  }
  // A socket refuses a positioned write (ESPIPE): no stack for that error.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    fs.writeSync(clientFd, EMPTY, 0, 0, position);
  } catch {
    // ESPIPE, expected.
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Marks `socket` for the request whose context is `context`, once per (socket, request). */
function markRequest(socket, request, context) {
  if (request[kMarkedOn] === socket) return;
  request[kMarkedOn] = socket;
  const clientFd = tcpFd(socket);
  if (clientFd < 0 || clientFd >= NO_SERVER) return; // not a connection the agent follows
  mark(clientFd, serverFdOf(context));
}

function wrapServer(proto) {
  const emit = proto.emit;
  proto.emit = function emitInRequestContext(event, req, res) {
    if ((event === 'request' || event === 'checkContinue' || event === 'checkExpectation') && req && req.socket && res) {
      return contexts.run(new ServerContext(req.socket, res), () => emit.apply(this, arguments));
    }
    return emit.apply(this, arguments);
  };
}

function wrapRequest(mod, name) {
  const create = mod[name];
  mod[name] = function requestInCallerContext() {
    const req = create.apply(this, arguments);
    // No bytes are written before this returns (the socket is handed over
    // in a later tick), so the context is taken before any mark.
    req[kContext] = contexts.getStore();
    return req;
  };
}

function install() {
  if (globalThis[kLoaded]) return; // required twice (NODE_OPTIONS and a -r)
  globalThis[kLoaded] = true;

  wrapServer(http.Server.prototype);
  wrapServer(https.Server.prototype);
  wrapRequest(http, 'request');
  wrapRequest(http, 'get');
  wrapRequest(https, 'request');
  wrapRequest(https, 'get');

  // Every write of a socket passes here (_write and _writev both); while it
  // is connecting, net calls it again once connected.
  const writeGeneric = net.Socket.prototype._writeGeneric;
  const ClientRequest = http.ClientRequest;
  net.Socket.prototype._writeGeneric = function writeGenericMarked(writev, data, encoding, cb) {
    const message = this._httpMessage;
    if (message && message[kMarkedOn] !== this && !this.connecting) {
      // A request made some other way (new http.ClientRequest) has no
      // context: CLEAR, so it never inherits a parent set for the socket.
      if (message instanceof ClientRequest) markRequest(this, message, message[kContext]);
      else message[kMarkedOn] = this; // a server's response: nothing to mark, ever
    }
    return writeGeneric.call(this, writev, data, encoding, cb);
  };

  // ESM importers read the exports when node:http's facade is first
  // built, after this; a facade an earlier preload built is updated here.
  require('node:module').syncBuiltinESMExports();
}

install();

module.exports = { MAGIC, FD_BITS, NO_SERVER };
