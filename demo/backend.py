"""Demo backend: a threaded Python HTTP server (one thread per request).

GET /api/items/<id>  -> JSON item, read from PostgreSQL when DEMO_PG_DSN is set
GET /healthz         -> ok
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# psycopg2 (Debian's python3-psycopg2) only when there is a database to query.
POOL = None
if os.environ.get("DEMO_PG_DSN"):
    from psycopg2.pool import ThreadedConnectionPool

    # minconn 0: connections open on the first requests, after the agent
    # started, so it sees their startup (database and user) too.
    POOL = ThreadedConnectionPool(0, 4, os.environ["DEMO_PG_DSN"])


def load_item(item_id):
    """The item's JSON, or None when there is no such item."""
    if POOL is None:
        time.sleep(0.002)  # no database: pretend to look it up
        return {"id": item_id, "name": f"item-{item_id}"}
    conn = POOL.getconn()
    try:
        with conn.cursor() as cur:
            # psycopg2 interpolates the parameter into the text it sends: the
            # agent exports it sanitized (id = ?) unless told otherwise.
            cur.execute("SELECT id, name FROM items WHERE id = %s", (item_id,))
            row = cur.fetchone()
        conn.commit()
    finally:
        POOL.putconn(conn)
    return None if row is None else {"id": row[0], "name": row[1]}


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
            item = load_item(int(item_id))
            if item is None:
                self._send(404, b'{"error":"no such item"}', "application/json")
                return
            self._send(200, json.dumps(item).encode(), "application/json")
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
