"""Raw-socket HTTP client: sends requests pipelined in one write, reads the
responses. Usage: http_pipeline.py PORT PATH... ; prints the status codes."""
import json
import socket
import sys

port = int(sys.argv[1])
paths = sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() for p in paths))
f = s.makefile("rb")
codes = []
for _ in paths:
    status = f.readline().split()[1]
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    f.read(length)
    codes.append(int(status))
s.close()
print(json.dumps(codes))
