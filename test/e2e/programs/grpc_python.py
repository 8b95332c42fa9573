#!/usr/bin/env python3
"""A gRPC client on another HTTP/2 stack (grpcio, gRPC C-core: its own framing
and HPACK encoder) for the gRPC tests, calling grpc_node.js's server
(service test.echo.Echo, grpc/echo.proto):
    python3 grpc_python.py client HOST:PORT
prints {"pid"}, waits for a line on stdin (the agent is attached by then),
makes CALLS one after the other on one channel, prints {"results"} (each
call's status code and the number of messages it got back) and exits.
Messages are encoded here (a few proto3 fields), so no generated code is
needed: grpcio from Debian (python3-grpcio) is all it takes."""
import json
import sys

import grpc


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def msg(text="", count=0, fail_code=0):
    """test.echo.Msg: text = 1, count = 3, fail_code = 4 (zero fields left out, as proto3 does)."""
    out = b""
    if text:
        t = text.encode()
        out += b"\x0a" + varint(len(t)) + t
    if count:
        out += b"\x18" + varint(count)
    if fail_code:
        out += b"\x20" + varint(fail_code)
    return out


# (method, kind, request); the order the test expects the spans in.
CALLS = [
    ("Unary", "unary", msg("p0")),
    ("Unary", "unary", msg("p1")),
    ("Unary", "unary", msg("missing", fail_code=5)),
    ("ServerStream", "stream", msg("s", count=2)),
]


def main():
    role, target = sys.argv[1:3]
    if role != "client":
        sys.exit("usage: grpc_python.py client HOST:PORT")
    print(json.dumps({"pid": __import__("os").getpid()}), flush=True)
    sys.stdin.readline()
    results = []
    with grpc.insecure_channel(target) as channel:
        for method, kind, request in CALLS:
            path = "/test.echo.Echo/" + method
            try:
                if kind == "unary":
                    channel.unary_unary(path)(request, timeout=10)
                    results.append({"code": 0, "messages": 1})
                else:
                    got = list(channel.unary_stream(path)(request, timeout=10))
                    results.append({"code": 0, "messages": len(got)})
            except grpc.RpcError as e:
                results.append({"code": e.code().value[0], "messages": 0})
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
