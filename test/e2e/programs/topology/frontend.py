"""Topology frontend: a threaded Python server (one thread per request). For
GET /order/<id> it calls the Python backend (/py/<id>) and the Node backend
(/node/<id>), passing the test id along in X-Test-Id, over keep-alive
connections kept per thread. Prints {"pid","port"} once listening."""
import http.client
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PY_PORT = int(sys.argv[1])
NODE_PORT = int(sys.argv[2])
local = threading.local()


def call(port, path, test_id):
    conns = getattr(local, "conns", None)
    if conns is None:
        conns = local.conns = {}
    conn = conns.get(port)
    if conn is None:
        conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"X-Test-Id": test_id})
    r = conn.getresponse()
    body = r.read()
    return r.status, body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        test_id = self.headers.get("X-Test-Id", "")
        item = self.path.rsplit("/", 1)[-1]
        a, _ = call(PY_PORT, f"/py/{item}", test_id)
        b, _ = call(NODE_PORT, f"/node/{item}", test_id)
        body = json.dumps({"py": a, "node": b}).encode()
        self.send_response(200 if a == 200 and b == 200 else 502)
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
