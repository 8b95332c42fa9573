"""Threaded Python HTTPS server (http.server in ssl, libssl.so.3) for the TLS
tests: GET /items -> 200 with a fixed JSON body, anything else 404.

  python3 https_server.py CERT KEY

Prints {"pid", "port"} once listening, like http_server.py.
"""
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = b'{"items":["a","b","c"]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/items":
            self._send(200, ITEMS)
        else:
            self._send(404, b"not found")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def log_message(self, *args):
        pass


cert, key = sys.argv[1], sys.argv[2]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
# The handshake in each handler thread, not in accept: a client that never
# finishes it does not stall the listener.
server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
print(json.dumps({"pid": os.getpid(), "port": server.server_address[1]}), flush=True)
server.serve_forever()
