#!/usr/bin/python3
# HTTP/2 peers written with the python3-h2 library (hyper-h2 4.1, hpack 4.0,
# Debian's python3-h2), for the session goldens recorded by
# record-sessions.mjs where Node and nghttp cannot serve:
#   h2-peer.py client PORT   a client whose HPACK encoder indexes every field,
#       :path and :method included (nghttp2 never indexes :path), on one
#       long-lived connection; prints "MARK attach" between its two halves.
#   h2-peer.py upgrade-server PORT   a cleartext server that accepts an
#       HTTP/1.1 Upgrade: h2c (RFC 7540 §3.2), answers the upgraded request on
#       stream 1 and later requests as they come; serves one connection.
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
from hpack import NeverIndexedHeaderTuple


def client(port):
    s = socket.create_connection(('127.0.0.1', port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    ended = set()

    def pump(until):
        while until not in ended:
            data = s.recv(65536)
            if not data:
                return
            for e in conn.receive_data(data):
                if isinstance(e, h2.events.StreamEnded) or isinstance(e, h2.events.StreamReset):
                    ended.add(e.stream_id)
            out = conn.data_to_send()
            if out:
                s.sendall(out)

    def request(method, path, body=None, grpc=False):
        sid = conn.get_next_available_stream_id()
        headers = [(':method', method), (':scheme', 'http'), (':authority', 'svc.local:8080'), (':path', path)]
        if grpc:
            # content-type never indexed: known to a decoder that joins later, while :path is a table hit.
            headers += [NeverIndexedHeaderTuple('content-type', 'application/grpc'), ('te', 'trailers')]
        else:
            headers += [('user-agent', 'h2-peer/1')]
        conn.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            conn.send_data(sid, body, end_stream=True)
        s.sendall(conn.data_to_send())
        pump(sid)
        time.sleep(0.05)

    msg = bytes([0, 0, 0, 0, 5, 0x0a, 0x03]) + b'h2p'
    request('GET', '/items/1')
    request('DELETE', '/items/2')
    request('POST', '/test.echo.Echo/Unary', msg, grpc=True)
    print('MARK attach', flush=True)
    time.sleep(0.3)
    # After the attach: the same methods and paths (dynamic-table hits on
    # entries older than the attach), then new ones. A request with a body
    # first: HEADERS and DATA in one write are what a joining agent can prove
    # (the GET's answer, HEADERS and DATA, proves the response side).
    request('POST', '/test.echo.Echo/Unary', msg, grpc=True)
    request('GET', '/items/1')
    request('DELETE', '/items/2')
    request('POST', '/test.echo.Echo/Unary', msg, grpc=True)
    request('PUT', '/items/3', b'{}')
    request('PUT', '/items/3', b'{}')
    conn.close_connection()
    s.sendall(conn.data_to_send())
    time.sleep(0.1)
    s.close()


def upgrade_server(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', port))
    ls.listen(1)
    print('LISTENING', flush=True)
    s, _ = ls.accept()
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b'\r\n\r\n', 1)
    lines = head.decode('latin1').split('\r\n')
    fields = {k.strip().lower(): v.strip() for k, v in (l.split(':', 1) for l in lines[1:])}
    s.sendall(b'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_upgrade_connection(fields['http2-settings'])
    path1 = lines[0].split(' ')[1]

    def respond(sid, path):
        body = ('hello %s\n' % path).encode()
        conn.send_headers(sid, [(':status', '200'), ('content-type', 'text/plain'), ('content-length', str(len(body)))])
        conn.send_data(sid, body, end_stream=True)

    respond(1, path1)
    s.sendall(conn.data_to_send())
    data = rest
    paths = {}
    while True:
        if data:
            for e in conn.receive_data(data):
                if isinstance(e, h2.events.RequestReceived):
                    paths[e.stream_id] = dict(e.headers)[b':path'].decode()
                if isinstance(e, h2.events.StreamEnded) and e.stream_id in paths:
                    respond(e.stream_id, paths.pop(e.stream_id))
                if isinstance(e, h2.events.ConnectionTerminated):
                    s.sendall(conn.data_to_send())
                    s.close()
                    return
            out = conn.data_to_send()
            if out:
                s.sendall(out)
        data = s.recv(65536)
        if not data:
            s.close()
            return


if __name__ == '__main__':
    role, port = sys.argv[1], int(sys.argv[2])
    client(port) if role == 'client' else upgrade_server(port)
