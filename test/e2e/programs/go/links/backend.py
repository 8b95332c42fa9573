"""Python backend for the Go links test (test/e2e/go-links.ebpf.test.ts):
GET /b/<id> answers 200, except on a first attempt of ids ending in 3 (503)
and of ids 7, 27, 47... (connection closed without an answer), as the Go
backend (main.go). Thread per connection. Prints {"pid","port"} once listening."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

attempts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ident = self.path[len("/b/"):]
        with lock:
            attempts[ident] = attempts.get(ident, 0) + 1
            first = attempts[ident] == 1
        try:
            n = int(ident.lstrip("t"))
        except ValueError:
            n = -1
        if first and n % 10 == 3:
            body, status = b"try again\n", 503
        elif first and n % 20 == 7:
            self.close_connection = True
            return
        else:
            body, status = json.dumps({"id": ident}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
