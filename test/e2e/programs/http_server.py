"""Threaded Python HTTP server for the end-to-end span and hostile-traffic tests.

GET /items/<id> -> 200 JSON; GET /slow -> 200 after 50 ms; GET /fail -> 503;
GET /big -> 200 with a 4 MiB body; GET /p/<n> -> 200 "p<n>"; anything else
404. Python's own limits answer an oversized request line (414) and header
(431). A client that resets mid-response is not an error here. Prints
{"pid", "port"} once listening.
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = b"b" * (4 << 20)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/items/"):
            self._send(200, json.dumps({"id": self.path.rsplit("/", 1)[1]}).encode())
        elif self.path == "/slow":
            time.sleep(0.05)
            self._send(200, b"slow")
        elif self.path == "/fail":
            self._send(503, b"unavailable")
        elif self.path == "/big":
            self._send(200, BIG)
        elif self.path.startswith("/p/"):
            self._send(200, ("p" + self.path[3:]).encode())
        else:
            self._send(404, b"not found")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(json.dumps({"pid": os.getpid(), "port": server.server_address[1]}), flush=True)
server.serve_forever()
