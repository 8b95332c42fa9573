"""One process, two kinds of traffic, for the kernel-mute end-to-end test.

HTTP/1.1: a threaded server and a keep-alive http.client connection to it.
Unknown: a raw TCP connection to itself carrying pseudo-random bytes (a
binary magic, then noise), in two phases so the test can let the agent mute
it in between. Phase 1 is one syscall per side (sendall of PHASE1 bytes, one
recv with MSG_WAITALL), so exactly that much is shipped before the mute.

Prints {"pid", "port"} once listening, then for each line on stdin runs the
next step and prints a JSON line:
  1: GET /items/1, then phase 1                -> {"step": 1, "raw_port"}
  2: phase 2 (PHASE2 bytes out, REPLY back),
     GET /chunked, GET /items/2, close all     -> {"step": 2, ...sizes}
"""
import http.client
import json
import os
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PHASE1 = 16384
PHASE2 = 4 << 20
REPLY = 1 << 20
MAGIC = b"\x00RAW"


def noise(n, seed):
    return MAGIC + random.Random(seed).randbytes(n - len(MAGIC))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first chunk|", b"second|"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"id": self.path.rsplit("/", 1)[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def read_exact(sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(min(1 << 16, n - len(got)))
        if not chunk:
            raise EOFError(len(got))
        got += chunk
    return bytes(got)


def main():
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http_server.daemon_threads = True
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    raw_listener = socket.create_server(("127.0.0.1", 0))
    port = http_server.server_address[1]
    print(json.dumps({"pid": os.getpid(), "port": port}), flush=True)

    sys.stdin.readline()
    web = http.client.HTTPConnection("127.0.0.1", port)
    web.request("GET", "/items/1")
    assert web.getresponse().read() == b'{"id": "1"}'
    client = socket.create_connection(raw_listener.getsockname())
    server, _ = raw_listener.accept()
    client.sendall(noise(PHASE1, 1))
    assert len(server.recv(PHASE1, socket.MSG_WAITALL)) == PHASE1
    print(json.dumps({"step": 1, "raw_port": raw_listener.getsockname()[1]}), flush=True)

    sys.stdin.readline()
    out = noise(PHASE2, 2)
    sender = threading.Thread(target=client.sendall, args=(out,))
    sender.start()
    assert read_exact(server, PHASE2) == out
    sender.join()
    reply = noise(REPLY, 3)
    server.sendall(reply)
    assert read_exact(client, REPLY) == reply
    client.close()
    server.close()
    web.request("GET", "/chunked")
    assert web.getresponse().read() == b"first chunk|second|"
    web.request("GET", "/items/2")
    assert web.getresponse().read() == b'{"id": "2"}'
    web.close()
    print(json.dumps({"step": 2, "phase1": PHASE1, "phase2": PHASE2, "reply": REPLY, "port": port}), flush=True)


main()
