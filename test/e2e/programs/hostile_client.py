"""Hostile traffic against an HTTP/1 port, one connection per case, in order;
then one normal request. Prints one JSON object: what each case got back.

Usage: hostile_client.py PORT
"""
import json
import random
import socket
import struct
import sys
import time

port = int(sys.argv[1])
out = {}


def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s


def read_response(f):
    """Status code and body length of one response, or None at EOF."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        name, _, value = h.decode("latin1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    f.read(length)
    return status


def closed_after(s, data):
    """Sends data, then reads until the server closes or 1 s passes; returns bytes received."""
    s.sendall(data)
    s.settimeout(1)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return got


# Noise (deterministic), a TLS ClientHello, RESP and an HTTP/2 preface on the HTTP port.
out["random"] = len(closed_after(conn(), random.Random(7).randbytes(4096)))
out["tls"] = len(closed_after(conn(), bytes.fromhex("160301020001000100fc0303") + bytes(32) + b"\x00"))
out["resp"] = len(closed_after(conn(), b"*1\r\n$4\r\nPING\r\n"))
out["h2"] = len(closed_after(conn(), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))

# Slowloris: a head sent in pieces over a second, then completed.
s = conn()
s.sendall(b"GET /items/slow HTTP/1.1\r\nHost: h\r\n")
time.sleep(0.5)
s.sendall(b"X-A: 1\r\n")
time.sleep(0.5)
s.sendall(b"\r\n")
out["slowloris"] = read_response(s.makefile("rb"))
s.close()

# A 1 MiB request line (414), a 200 KB header line (431).
s = conn()
s.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: h\r\n\r\n")
out["long_target"] = read_response(s.makefile("rb"))
s.close()
s = conn()
s.sendall(b"GET /items/h HTTP/1.1\r\nHost: h\r\nX-Big: " + b"x" * 200_000 + b"\r\n\r\n")
out["long_header"] = read_response(s.makefile("rb"))
s.close()

# 1000 GETs pipelined in one write, read in order.
s = conn()
s.sendall(b"".join(b"GET /p/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(1000)))
f = s.makefile("rb")
codes = [read_response(f) for _ in range(1000)]
out["pipelined"] = [len(codes), sorted(set(codes))]
s.close()

# A client that resets in the middle of a 4 MiB response.
s = conn()
s.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
got = 0
while got < 100_000:
    got += len(s.recv(65536))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
out["reset_after"] = got >= 100_000
time.sleep(0.2)

# Then a normal request.
s = conn()
s.sendall(b"GET /items/7 HTTP/1.1\r\nHost: h\r\n\r\n")
out["normal"] = read_response(s.makefile("rb"))
s.close()
print(json.dumps(out), flush=True)
