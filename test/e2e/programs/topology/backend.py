"""Topology Python backend: GET /py/<id> and /leaf/<id> answer at once.
Prints {"pid","port"} once listening."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path, "id": self.headers.get("X-Test-Id", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
server.request_queue_size = 128
print(json.dumps({"pid": os.getpid(), "port": server.server_address[1]}), flush=True)
server.serve_forever()
