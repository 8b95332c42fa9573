"""Backend behind the nginx of test/e2e/nginx-links.ebpf.test.ts: one
process, two listening ports (two upstream servers of one upstream block),
a thread per connection. GET /b/<id> answers 200 with the id, except the
first time it sees an id ending in (other paths, such as the mirror's
/m/r/<id>, always answer 200)
  f: 502 (nginx's proxy_next_upstream http_502 retries on the other port)
  h: after HANG_S seconds, longer than nginx's proxy_read_timeout (nginx
     gives up on that attempt and retries on the other port).
Prints {"pid","ports"} once listening."""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
seen = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        test_id = self.path.rsplit("/", 1)[-1]
        first = False
        if self.path.startswith("/b/"):
            with lock:
                first = test_id not in seen
                seen.add(test_id)
        status = 200
        if first and test_id.endswith("f"):
            status = 502
        elif first and test_id.endswith("h"):
            time.sleep(HANG_S)
        body = json.dumps({"id": test_id, "port": self.server.server_address[1]}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The hung attempt's connection: nginx gave up on it and closed it.
            self.close_connection = True

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: read by the constructor (64 in flight connect at once).
    request_queue_size = 256


servers = [Server(("127.0.0.1", 0), Handler) for _ in range(2)]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(json.dumps({"pid": os.getpid(), "ports": [s.server_address[1] for s in servers]}), flush=True)
threading.Event().wait()
