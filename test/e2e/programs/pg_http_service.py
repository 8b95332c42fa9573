"""An HTTP service that queries PostgreSQL per request, for the end-to-end
test of database spans under HTTP server spans: http.server's
ThreadingHTTPServer (a thread per request), psycopg2 from Debian, a
connection per request to the server named by the PG* variables.
GET /accounts/<id> answers the owner of that account. Prints {"pid", "port"}
once listening; stops on a line (or EOF) on stdin."""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split('/')
        if len(parts) != 3 or parts[1] != 'accounts' or not parts[2].isdigit():
            self.send_error(404)
            return
        conn = psycopg2.connect(host=os.environ['PGHOST'], port=int(os.environ['PGPORT']), user=os.environ['PGUSER'],
                                password=os.environ['PGPASSWORD'], dbname=os.environ['PGDATABASE'], sslmode='disable')
        try:
            with conn.cursor() as cur:
                cur.execute('SELECT owner FROM accounts WHERE id = %s', (int(parts[2]),))
                row = cur.fetchone()
            conn.rollback()
        finally:
            conn.close()
        body = json.dumps({'owner': row[0] if row else None}).encode()
        self.send_response(200 if row else 404)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
print(json.dumps({'pid': os.getpid(), 'port': server.server_address[1]}), flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.readline()
server.shutdown()
print(json.dumps({'done': True}), flush=True)
