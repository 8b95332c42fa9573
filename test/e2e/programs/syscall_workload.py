"""Known syscalls for the syscall-latency end-to-end tests.

Prints {"pid", "closed_port", "lock_path"} once everything it needs is
imported and set up (so the calls that follow are only the ones below), waits
for "go" on stdin, then:
  - 20 x time.sleep(0.05) (clock_nanosleep or nanosleep, the libc's choice);
  - 30 opens of a missing file (openat, ENOENT);
  - 1000 one-byte reads from a pipe already holding 1000 bytes;
  - a connect to a closed local port (ECONNREFUSED);
  - three fd-based calls that block about 100 ms, for slow-call reports:
    a read from a pipe written by another thread, an flock on a file another
    thread holds locked, a recv on a TCP connection the peer writes to late.
The helper threads wait with Event.wait (futex), never time.sleep, so the
sleeps above stay exactly 20. Prints what it did as the last JSON line, then
exits.
"""
import fcntl
import json
import os
import socket
import sys
import tempfile
import threading
import time

DELAY = 0.1


def later(action):
    def run():
        threading.Event().wait(DELAY)
        action()

    t = threading.Thread(target=run)
    t.start()
    return t


def main():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()

    lock_dir = tempfile.mkdtemp(prefix="syslat-")
    lock_path = os.path.join(lock_dir, "held.lock")
    holder = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    waiter = os.open(lock_path, os.O_RDWR)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()

    small_r, small_w = os.pipe()
    os.write(small_w, b"x" * 1000)
    slow_r, slow_w = os.pipe()

    print(json.dumps({"pid": os.getpid(), "closed_port": closed_port, "lock_path": lock_path}), flush=True)
    sys.stdin.readline()

    for _ in range(20):
        time.sleep(0.05)
    for _ in range(30):
        try:
            open("/nonexistent-dir/missing-file")
        except FileNotFoundError:
            pass
    for _ in range(1000):
        os.read(small_r, 1)
    refused = socket.socket()
    try:
        refused.connect(("127.0.0.1", closed_port))
    except ConnectionRefusedError:
        pass
    refused.close()

    t = later(lambda: os.write(slow_w, b"y"))
    os.read(slow_r, 1)
    t.join()

    fcntl.flock(holder, fcntl.LOCK_EX)
    t = later(lambda: fcntl.flock(holder, fcntl.LOCK_UN))
    fcntl.flock(waiter, fcntl.LOCK_EX)
    t.join()

    t = later(lambda: server.sendall(b"z"))
    client.recv(1)
    t.join()

    print(json.dumps({
        "sleeps": 20,
        "enoent_opens": 30,
        "reads": 1001,
        "refused_connects": 1,
        "slow_pipe_inode": os.fstat(slow_r).st_ino,
        "slow_pipe_fd": slow_r,
        "lock_fd": waiter,
        "socket_fd": client.fileno(),
        "socket_local": list(client.getsockname()),
        "socket_remote": list(client.getpeername()),
    }), flush=True)
    os.unlink(lock_path)
    os.rmdir(lock_dir)


main()
