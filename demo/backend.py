"""Demo backend: a threaded Python HTTP server (one thread per request).

GET /api/items/<id>  -> JSON item
GET /healthz         -> ok
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
            return
        if self.path.startswith("/api/items/"):
            item_id = self.path.rsplit("/", 1)[-1]
            if not item_id.isdigit():
                self._send(400, b'{"error":"bad id"}', "application/json")
                return
            time.sleep(0.002)  # pretend to look it up
            body = json.dumps({"id": int(item_id), "name": f"item-{item_id}"}).encode()
            self._send(200, body, "application/json")
            return
        self._send(404, b'{"error":"not found"}', "application/json")

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    port = int(os.environ.get("PORT", "18081"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"backend listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
