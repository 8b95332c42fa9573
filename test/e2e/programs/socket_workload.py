"""TCP workload for the capture end-to-end tests.

One process plays server (a thread) and client (the main thread) on loopback,
so one --pid selects both ends. It prints {"pid", "port"} once listening,
waits for a line on stdin (the agent is attached by then), runs the scenario,
and prints a JSON line with what the test must find in the capture.

Scenarios: syscalls | fdreuse | dup2 | closerange | big | existing
Options: --ipv6
"""
import json
import os
import socket
import sys
import threading

CLIENT_PARTS = [
    ("write", b"hello-os-write|"),
    ("sendto", b"send|"),
    ("sendmsg", [b"sendmsg-a|", b"sendmsg-b|"]),
    ("writev", [b"writev-1|", b"writev-2|"]),
]
SERVER_PARTS = [
    ("write", b"reply-write|"),
    ("sendmsg", [b"rm-1|", b"rm-2|", b"rm-3|"]),
    ("writev", [b"rv-1|", b"rv-2|"]),
    ("sendto", b"rsend|"),
]
BIG = bytes(i % 251 for i in range(1 << 20))


def flat(parts):
    return b"".join(p if isinstance(p, bytes) else b"".join(p) for _, p in parts)


def send_parts(sock, parts):
    fd = sock.fileno()
    for how, data in parts:
        if how == "write":
            n = os.write(fd, data)
        elif how == "sendto":
            n = sock.send(data)
        elif how == "sendmsg":
            n = sock.sendmsg(data)
        elif how == "writev":
            n = os.writev(fd, data)
        want = len(data) if isinstance(data, bytes) else sum(map(len, data))
        assert n == want, (how, n, want)


def recv_exact(sock, total):
    """Reads `total` bytes rotating through the read-side syscalls."""
    fd = sock.fileno()
    got = bytearray()
    i = 0
    while len(got) < total:
        left = total - len(got)
        kind = i % 4
        i += 1
        if kind == 0:
            buf = bytearray(min(left, 65536))
            n = sock.recv_into(buf)
            chunk = bytes(buf[:n])
        elif kind == 1:
            chunk = os.read(fd, min(left, 65536))
        elif kind == 2:
            chunk, _, _, _ = sock.recvmsg(min(left, 65536))
        else:
            a, b = bytearray(min(left, 3)), bytearray(max(0, min(left - 3, 65536)))
            n = os.readv(fd, [a, b] if len(b) else [a])
            chunk = bytes((a + b)[:n])
        if not chunk:
            raise RuntimeError("peer closed early")
        got += chunk
    return bytes(got)


def main():
    scenario = sys.argv[1]
    ipv6 = "--ipv6" in sys.argv
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    host = "::1" if ipv6 else "127.0.0.1"
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    result = {"scenario": scenario, "pid": os.getpid(), "port": port}

    pre = None
    pre_srv = None
    if scenario == "existing":
        # Opened before the agent attaches: it cannot have seen connect/accept.
        pre = socket.create_connection((host, port))
        pre_srv, _ = srv.accept()

    print(json.dumps({"pid": os.getpid(), "port": port}), flush=True)
    sys.stdin.readline()

    if scenario == "syscalls":
        server_side = {}

        def serve():
            conn, _ = srv.accept()
            server_side["fd"] = conn.fileno()
            server_side["got"] = recv_exact(conn, len(flat(CLIENT_PARTS)))
            send_parts(conn, SERVER_PARTS)
            conn.recv(1)  # wait for the client's close
            conn.close()

        t = threading.Thread(target=serve)
        t.start()
        c = socket.create_connection((host, port))
        result["client_fd"] = c.fileno()
        result["client_port"] = c.getsockname()[1]
        send_parts(c, CLIENT_PARTS)
        reply = recv_exact(c, len(flat(SERVER_PARTS)))
        c.close()
        t.join()
        assert server_side["got"] == flat(CLIENT_PARTS)
        assert reply == flat(SERVER_PARTS)
        result["server_fd"] = server_side["fd"]
        result["request"] = flat(CLIENT_PARTS).decode()
        result["reply"] = flat(SERVER_PARTS).decode()
    elif scenario == "fdreuse":
        fds = []
        ports = []
        for word in (b"first", b"second"):
            # The client socket comes first: a thread blocked in accept()
            # holds the lowest free fd number, and the reuse must be ours.
            c = socket.socket(family, socket.SOCK_STREAM)

            def serve():
                conn, _ = srv.accept()
                recv_exact(conn, len(word))
                conn.close()
            t = threading.Thread(target=serve)
            t.start()
            c.connect((host, port))
            fds.append(c.fileno())
            ports.append(c.getsockname()[1])
            c.sendall(word)
            t.join()
            c.close()
        result["client_fds"] = fds
        result["client_ports"] = ports
    elif scenario in ("dup2", "closerange"):
        # Connection A says "first"; then its fd number stops naming it
        # without a close(): dup2 of /dev/null onto it, or close_range.
        # Then a new connection B (for close_range, on A's fd number) says
        # "second".
        got = []

        def serve(n):
            conn, _ = srv.accept()
            got.append(recv_exact(conn, n))
            conn.close()
        a = socket.socket(family, socket.SOCK_STREAM)
        t = threading.Thread(target=serve, args=(5,))
        t.start()
        a.connect((host, port))
        fd = a.fileno()
        result["a_port"] = a.getsockname()[1]
        a.sendall(b"first")
        t.join()
        t = threading.Thread(target=serve, args=(6,))
        t.start()
        if scenario == "dup2":
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)  # closes A's file: no close() on fd
            os.close(devnull)
            os.write(fd, b"gone")  # into /dev/null now
            b = socket.create_connection((host, port))
            result["b_port"] = b.getsockname()[1]
            b.sendall(b"second")
            b.close()
            os.close(fd)
        else:
            a.detach()  # the fd is ours now; closerange closes it
            os.closerange(fd, fd + 1)  # close_range(2) on Linux >= 5.9
            c = socket.socket(family, socket.SOCK_STREAM)
            assert c.fileno() == fd, (c.fileno(), fd)
            c.connect((host, port))
            result["b_port"] = c.getsockname()[1]
            os.write(fd, b"second")
            c.close()
        t.join()
        assert got == [b"first", b"second"], got
        result["fd"] = fd
    elif scenario == "big":
        def serve():
            conn, _ = srv.accept()
            got = recv_exact(conn, len(BIG))
            assert got == BIG
            conn.sendall(b"ok")
            conn.close()
        t = threading.Thread(target=serve)
        t.start()
        c = socket.create_connection((host, port))
        n = os.write(c.fileno(), BIG)
        assert n == len(BIG), n
        assert c.recv(2) == b"ok"
        t.join()
        c.close()
        result["written"] = n
    elif scenario == "existing":
        result["client_port"] = pre.getsockname()[1]
        pre.sendall(b"late-hello")
        assert recv_exact(pre_srv, 10) == b"late-hello"
        pre_srv.sendall(b"late-reply")
        assert recv_exact(pre, 10) == b"late-reply"
        pre.close()
        pre_srv.close()
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    srv.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
