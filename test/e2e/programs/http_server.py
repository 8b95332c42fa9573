"""Threaded Python HTTP server for the end-to-end span tests.

GET /items/<id> -> 200 JSON; GET /slow -> 200 after 50 ms; GET /fail -> 503;
anything else 404. Prints {"pid", "port"} once listening.
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
        else:
            self._send(404, b"not found")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(json.dumps({"pid": os.getpid(), "port": server.server_address[1]}), flush=True)
server.serve_forever()
