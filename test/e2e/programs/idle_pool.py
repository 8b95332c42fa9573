"""An HTTP keep-alive pool whose idle connections the server closes.

One process is both ends on loopback (one --pid selects both). It prints
{"pid", "port"} once listening, waits for a line on stdin, then opens POOL
connections, makes one request on each, and leaves them idle; the server
closes each connection after IDLE seconds without a request (a FIN, as idle
timeouts in servers and proxies do), and the client closes its end when it
reads the end of stream. Prints {"responses", "closed_by_server", "errors"}.
"""
import json
import os
import socket
import sys
import threading

POOL = 5
IDLE = 0.3
REQUEST = b"GET /pooled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=0\r\n\r\nok"

errors = []


def serve(conn):
    conn.settimeout(IDLE)
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(RESPONSE)
        try:
            # Idle keep-alive: no second request comes; the timeout closes it.
            if conn.recv(4096):
                errors.append("unexpected second request")
        except socket.timeout:
            pass
    except Exception as e:  # noqa: BLE001
        errors.append(f"server: {e}")
    finally:
        conn.close()


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
port = listener.getsockname()[1]
print(json.dumps({"pid": os.getpid(), "port": port}), flush=True)
sys.stdin.readline()

threads = []
for _ in range(POOL):
    threads.append(threading.Thread(target=lambda c=None: serve(listener.accept()[0])))
for t in threads:
    t.start()

responses = 0
closed_by_server = 0
clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(POOL)]
for c in clients:
    c.sendall(REQUEST)
for c in clients:
    got = b""
    while not got.endswith(b"ok"):
        got += c.recv(4096)
    responses += got.startswith(b"HTTP/1.1 200")
for c in clients:
    c.settimeout(5)
    if c.recv(4096) == b"":
        closed_by_server += 1
    c.close()
for t in threads:
    t.join()
print(json.dumps({"responses": responses, "closed_by_server": closed_by_server, "errors": errors}), flush=True)
