"""TCP health and flow workload for the end-to-end tests.

One process is both client (main thread) and server (threads) on loopback,
so one --pid selects both ends. It prints {"pid", ports...} once listening,
waits for a line on stdin (the agent is attached by then), then:

  refused  connects to a closed port: ECONNREFUSED
  http     one HTTP/1.1 exchange: exactly REQUEST up, RESPONSE down
  reset    sends RESET_MSG; the server reads it and closes with SO_LINGER 0:
           a reset sent by the server side, received by the client side
  muted    unknown bytes: MUTED_FIRST, a pause (the agent mutes the
           connection), then the rest of MUTED_UP; MUTED_DOWN back

and prints a JSON line with the byte counts. Every connection is read to its
end before it is closed, so no other reset is sent.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

REQUEST = b"GET /tcp-health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: e2e\r\n\r\n"
BODY = b"x" * 1234
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
RESET_MSG = b"\x00reset me please\n"
MUTED_FIRST = 1000
MUTED_UP = 200_000
MUTED_DOWN = 150_000


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def recv_exact(sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(min(65536, n - len(got)))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(got), n))
        got += chunk
    return bytes(got)


def wait_eof(sock):
    if sock.recv(1) != b"":
        raise RuntimeError("unexpected bytes before EOF")


http_l, reset_l, muted_l = listener(), listener(), listener()
closed_port = free_port()
errors = []


def serve(l, handler):
    def run():
        try:
            a, _ = l.accept()
            handler(a)
        except Exception as e:  # reported in the result line
            errors.append(repr(e))

    t = threading.Thread(target=run)
    t.start()
    return t


def http_handler(a):
    if recv_exact(a, len(REQUEST)) != REQUEST:
        raise RuntimeError("bad request")
    a.sendall(RESPONSE)
    wait_eof(a)
    a.close()


def reset_handler(a):
    recv_exact(a, len(RESET_MSG))
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()


def muted_handler(a):
    recv_exact(a, MUTED_UP)
    a.sendall(b"\x00\x01\x02\x03" * (MUTED_DOWN // 4))
    wait_eof(a)
    a.close()


print(json.dumps({
    "pid": os.getpid(),
    "closed_port": closed_port,
    "http_port": http_l.getsockname()[1],
    "reset_port": reset_l.getsockname()[1],
    "muted_port": muted_l.getsockname()[1],
}), flush=True)
sys.stdin.readline()

threads = [serve(http_l, http_handler), serve(reset_l, reset_handler), serve(muted_l, muted_handler)]
result = {}

try:
    socket.create_connection(("127.0.0.1", closed_port))
    result["refused"] = False
except ConnectionRefusedError:
    result["refused"] = True

c = socket.create_connection(("127.0.0.1", http_l.getsockname()[1]))
c.sendall(REQUEST)
result["http_response_ok"] = recv_exact(c, len(RESPONSE)) == RESPONSE
c.close()

c = socket.create_connection(("127.0.0.1", reset_l.getsockname()[1]))
c.sendall(RESET_MSG)
try:
    c.recv(1)
    result["reset"] = False
except ConnectionResetError:
    result["reset"] = True
c.close()

c = socket.create_connection(("127.0.0.1", muted_l.getsockname()[1]))
c.sendall(b"\xfe" * MUTED_FIRST)
time.sleep(0.5)  # the agent ignores the connection at its first bytes and mutes it
rest = MUTED_UP - MUTED_FIRST
while rest > 0:
    n = min(rest, 16384)
    c.sendall(b"\xfe" * n)
    rest -= n
recv_exact(c, MUTED_DOWN)
c.close()

for t in threads:
    t.join()
result.update({
    "errors": errors,
    "request": len(REQUEST),
    "response": len(RESPONSE),
    "reset_msg": len(RESET_MSG),
    "muted_up": MUTED_UP,
    "muted_down": MUTED_DOWN,
})
print(json.dumps(result), flush=True)
