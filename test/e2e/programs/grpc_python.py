#!/usr/bin/python3
# gRPC over cleartext HTTP/2 with Debian's python3-grpcio (gRPC C-core, which
# has its own HTTP/2 framing and HPACK encoder, unlike grpc-js's nghttp2), for
# the gRPC peer tests. Service test.echo.Echo of grpc/echo.proto, called and
# served with raw bytes (no generated code): messages are encoded by hand.
# Run it with /usr/bin/python3 (the Debian package's interpreter).
#   grpc_python.py server
#     listens on 127.0.0.1:0; prints {"pid","port"}, then one line per call it
#     answered: {"path","code","requests","responses"} (message sizes in bytes,
#     printed when the handler returns) and serves until killed. Unary: sleeps delay_ms, then fails with
#     fail_code ("failed on purpose") when non-zero, else echoes the request's
#     bytes. ServerStream sends `count` messages {text: TEXT-i}; ClientStream
#     answers {count: messages received}; Bidi echoes each message. Every
#     answer carries trailing metadata x-peer, as grpc_node.js's do.
#   grpc_python.py client HOST:PORT
#     prints {"pid"}, waits for a line on stdin (the agent is attached by then),
#     makes the peer calls on one channel (see CALLS), prints {"results"}, one
#     {"path","code","details","requests","responses"} per call, and exits.
import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = 'test.echo.Echo'
NOT_FOUND = 5
STATUS_BY_CODE = {c.value[0]: c for c in grpc.StatusCode}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_msg(text=None, count=None, fail_code=None):
    """A test.echo.Msg with the fields given (proto3: absent fields are not sent)."""
    out = b''
    if text is not None:
        raw = text.encode()
        out += b'\x0a' + varint(len(raw)) + raw
    if count is not None:
        out += b'\x18' + varint(count)
    if fail_code is not None:
        out += b'\x20' + varint(fail_code)
    return out


def decode_msg(data):
    """The fields of a test.echo.Msg: text, blob, count, fail_code, delay_ms (proto3 defaults when absent)."""
    msg = {'text': '', 'blob': b'', 'count': 0, 'fail_code': 0, 'delay_ms': 0}
    names = {1: 'text', 2: 'blob', 3: 'count', 4: 'fail_code', 5: 'delay_ms'}
    i = 0

    def read_varint():
        nonlocal i
        n = shift = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = read_varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            size = read_varint()
            value = bytes(data[i:i + size])
            i += size
        else:
            raise ValueError(f'unexpected wire type {wire}')
        name = names.get(field)
        if name == 'text':
            msg[name] = value.decode()
        elif name is not None:
            msg[name] = value
    return msg


def serve():
    lock = threading.Lock()

    def report(path, code, requests, responses):
        with lock:
            print(json.dumps({'path': path, 'code': code, 'requests': requests, 'responses': responses}), flush=True)

    def peer(context):
        # As grpc_node.js does: the client's address as the server saw it, in
        # the trailers, so a client can tell how many connections it used.
        context.set_trailing_metadata((('x-peer', context.peer()),))

    def unary(request, context):
        peer(context)
        req = decode_msg(request)
        if req['delay_ms'] > 0:
            time.sleep(req['delay_ms'] / 1000)
        if req['fail_code'] != 0:
            report(f'/{SERVICE}/Unary', req['fail_code'], [len(request)], [])
            context.abort(STATUS_BY_CODE[req['fail_code']], 'failed on purpose')
        report(f'/{SERVICE}/Unary', 0, [len(request)], [len(request)])
        return request

    def server_stream(request, context):
        peer(context)
        req = decode_msg(request)
        sent = []
        for i in range(req['count']):
            m = encode_msg(text=f"{req['text']}-{i}")
            sent.append(len(m))
            yield m
        report(f'/{SERVICE}/ServerStream', 0, [len(request)], sent)

    def client_stream(request_iterator, context):
        peer(context)
        sizes = [len(m) for m in request_iterator]
        answer = encode_msg(count=len(sizes))
        report(f'/{SERVICE}/ClientStream', 0, sizes, [len(answer)])
        return answer

    def bidi(request_iterator, context):
        peer(context)
        sizes = []
        for m in request_iterator:
            sizes.append(len(m))
            yield m
        report(f'/{SERVICE}/Bidi', 0, sizes, sizes)

    # No (de)serializers: the handlers see and return the messages' bytes.
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        'Unary': grpc.unary_unary_rpc_method_handler(unary),
        'ServerStream': grpc.unary_stream_rpc_method_handler(server_stream),
        'ClientStream': grpc.stream_unary_rpc_method_handler(client_stream),
        'Bidi': grpc.stream_stream_rpc_method_handler(bidi),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    print(json.dumps({'pid': os.getpid(), 'port': port}), flush=True)
    server.wait_for_termination()


# The calls the client makes, one after the other: (method, request fields).
CALLS = [
    ('Unary', {'text': 'ok'}),
    ('Unary', {'text': 'missing', 'fail_code': NOT_FOUND}),
    ('ServerStream', {'text': 's', 'count': 3}),
]


def run_client(target):
    print(json.dumps({'pid': os.getpid()}), flush=True)
    sys.stdin.readline()
    # No proxy from the environment: the calls go straight to the server.
    with grpc.insecure_channel(target, options=[('grpc.enable_http_proxy', 0)]) as channel:
        results = []
        for method, fields in CALLS:
            path = f'/{SERVICE}/{method}'
            request = encode_msg(**fields)
            responses = []
            code, details = 0, ''
            try:
                if method == 'Unary':
                    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
                    responses.append(len(call(request, timeout=10)))
                else:
                    call = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
                    for m in call(request, timeout=10):
                        responses.append(len(m))
            except grpc.RpcError as e:
                code, details = e.code().value[0], e.details()
            results.append({'path': path, 'code': code, 'details': details, 'requests': [len(request)], 'responses': responses})
    print(json.dumps({'results': results}), flush=True)


if __name__ == '__main__':
    role = sys.argv[1] if len(sys.argv) > 1 else ''
    if role == 'server':
        serve()
    elif role == 'client' and len(sys.argv) == 3:
        run_client(sys.argv[2])
    else:
        print('usage: grpc_python.py server | client HOST:PORT', file=sys.stderr)
        sys.exit(2)
