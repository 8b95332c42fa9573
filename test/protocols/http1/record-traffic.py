#!/usr/bin/env python3
"""Records real HTTP/1 traffic for the golden captures: runs a real server
(Python http.server or Node http) on loopback under strace, sends one
scenario's bytes from a client, and writes the server's syscalls on the
accepted connection to test/fixtures/http1/recorded/<scenario>.json:

  {"server": "...", "syscalls": [{"side": "ingress"|"egress", "atUs": n, "data": base64}, ...], "closeUs": n}

atUs is relative to the first syscall: ingress at the read's exit (as the
agent stamps it), egress at the write's entry. cases.ts turns a recording
into events (capture cap applied there). Run by hand, review, commit:

  python3 test/protocols/http1/record-traffic.py [scenario...]
"""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '../../fixtures/http1/recorded')

PY_SERVER = r'''
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, self.path.encode())

    def do_POST(self):
        # A chunked body read as RFC 9112 section 7.1 says; anything else is a 400.
        if self.headers.get('Transfer-Encoding', '').lower() != 'chunked':
            self.rfile.read(int(self.headers.get('Content-Length', '0')))
            return self.reply(200, b'ok')
        while True:
            line = self.rfile.readline(1024).split(b';')[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                self.close_connection = True
                return self.reply(400, b'bad chunk')
            if size == 0:
                self.rfile.readline(1024)
                return self.reply(200, b'ok')
            self.rfile.read(size + 2)

HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
'''

NODE_SERVER = r'''
const http = require('node:http');
http.createServer((req, res) => {
  // Answers at once, before the body is read (a common handler shape).
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
  res.end('ok');
  req.resume();
}).listen(Number(process.argv[1]), '127.0.0.1');
'''


def pipelined(n):
    return b''.join(b'GET /r/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % i for i in range(n))


CHUNKED_BAD = (b'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
               b'5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n')

SCENARIOS = {
    # name: (server, request bytes, responses expected or None to read until close)
    'python-pipelined-100': ('python', pipelined(100), 100),
    'python-pipelined-1000': ('python', pipelined(1000), 1000),
    'python-414-request-line': ('python', b'GET /' + b'a' * (1024 * 1024) + b' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', None),
    'python-431-header': ('python', b'GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ' + b'b' * (200 * 1024) + b'\r\n\r\n', None),
    'node-431-header': ('node', b'GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ' + b'b' * (200 * 1024) + b'\r\n\r\n', None),
    'python-bad-chunked': ('python', CHUNKED_BAD, None),
    'node-bad-chunked': ('node', CHUNKED_BAD, None),
}

CALL = re.compile(r'^(\d+\.\d+) (\w+)\((\d+)(?:, (.*))?\)\s+= (-?\d+)(?: \w+ \([^)]*\))? <(\d+\.\d+)>$')
STR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')


def strace_bytes(s):
    return bytes.fromhex(s.replace('\\x', ''))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def drive(port, data, expected):
    c = socket.create_connection(('127.0.0.1', port))
    try:
        c.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = b''
    c.settimeout(3)
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
            if expected is not None and got.count(b'HTTP/1.') >= expected and got.endswith(b'/r/%d' % (expected - 1)):
                break
    except (socket.timeout, ConnectionResetError):
        pass
    c.close()
    return got


def record(name):
    server, data, expected = SCENARIOS[name]
    port = free_port()
    trace = tempfile.mktemp(suffix='.strace')
    if server == 'python':
        cmd = [sys.executable, '-c', PY_SERVER, str(port)]
    else:
        cmd = ['node', '-e', NODE_SERVER, str(port)]
    p = subprocess.Popen(['strace', '-ttt', '-T', '-xx', '-s', '1100000', '-o', trace,
                          '-e', 'trace=accept,accept4,read,recvfrom,write,sendto,writev,close'] + cmd,
                         start_new_session=True)
    for _ in range(400):
        try:
            socket.create_connection(('127.0.0.1', port)).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.2)
    got = drive(port, data, expected)
    time.sleep(0.5)
    # strace detaches from a tracee on SIGTERM: the whole group goes.
    os.killpg(p.pid, signal.SIGTERM)
    p.wait()
    fds, calls, close_us = set(), [], None
    accepted = 0
    with open(trace) as f:
        for line in f:
            m = CALL.match(line.strip())
            if not m:
                continue
            at, fn, fd, args, ret, dur = float(m[1]), m[2], int(m[3]), m[4], int(m[5]), float(m[6])
            if fn.startswith('accept') and ret >= 0:
                accepted += 1
                # The first connection is the readiness probe; the second is the scenario's.
                if accepted == 2:
                    fds = {ret}
                continue
            if fd not in fds:
                continue
            if fn == 'close':
                close_us = at
                fds = set()
                continue
            if ret <= 0:
                continue
            if fn in ('read', 'recvfrom'):
                payload = strace_bytes(STR.search(args)[1])[:ret]
                calls.append(('ingress', at + dur, payload))
            else:
                payload = b''.join(strace_bytes(s) for s in STR.findall(args))[:ret]
                calls.append(('egress', at, payload))
    os.unlink(trace)
    t0 = min(c[1] for c in calls)
    us = lambda t: round((t - t0) * 1e6)
    out = {
        'server': f'{server} ({"Python " + sys.version.split()[0] if server == "python" else "Node " + subprocess.check_output(["node", "--version"]).decode().strip()}) on loopback, recorded with strace',
        'syscalls': [{'side': s, 'atUs': us(t), 'data': base64.b64encode(d).decode()} for s, t, d in calls],
        'closeUs': us(close_us) if close_us is not None else None,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
        json.dump(out, f, indent=0)
        f.write('\n')
    sizes = [(s[0][0], len(s[2])) for s in calls]
    print(f'{name}: {len(calls)} syscalls, client got {len(got)} bytes ({got[:40]!r}...), first: {sizes[:6]}')


if __name__ == "__main__":
    import faulthandler; faulthandler.dump_traceback_later(30, exit=True)
    for n in sys.argv[1:] or SCENARIOS:
        record(n)
