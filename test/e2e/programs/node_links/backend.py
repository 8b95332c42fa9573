"""Backend for the Node preload's e2e test (a thread per connection): GET
/b/<id> answers 200, except for ids whose number ends in 0 (500) or 5 (the
connection is reset, no answer); GET /b/<id>/retry always answers 200.
Prints {"pid","port"} once listening."""
import json
import os
import socket
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        last = self.path.rstrip("/").split("/")[-1]
        n = int(self.path.split("/")[2][1:]) if self.path.startswith("/b/") else 0
        if last != "retry" and n % 10 == 5:
            # An upstream failure: RST instead of an answer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        status = 500 if last != "retry" and n % 10 == 0 else 200
        body = json.dumps({"path": self.path, "id": self.headers.get("X-Test-Id", "")}).encode()
        self.send_response(status)
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
