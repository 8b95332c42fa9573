#!/usr/bin/env python3
"""Records real TLS handshakes for test/fixtures/tls/: runs the agent's
`ebpf-otel capture --json` on `openssl s_server` answered by curl (TLS 1.3
and TLS 1.2) on loopback, and writes each captured connection (the server's
and the client's) as a replay case: events.jsonl (the harness's format,
positions from the captured sizes, times relative to the connection's first
event) and expected.json (no records, one unprobed connection).

Needs root and eBPF (and the bench lock on a shared box). Run by hand,
review, commit:

  flock /tmp/bench.lock python3 test/protocols/tls/record-tls.py
"""

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '../../..'))
OUT = os.path.join(ROOT, 'test/fixtures/tls')
BIN = os.path.join(ROOT, 'bin/ebpf-otel')


def sh(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def pki(d):
    sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ca', cwd=d)
    with open(os.path.join(d, 'server.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
    sh('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=server', cwd=d)
    sh('openssl', 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext', cwd=d)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('s_server did not listen')


def endpoint(s):
    host, port = s.rsplit(':', 1)
    return host.strip('[]'), int(port)


def to_case(events):
    """Events of one connection (capture --json objects) -> (session, lines)."""
    first = events[0]
    local, lport = endpoint(first['local'])
    remote, rport = endpoint(first['remote'])
    t0 = int(first['ts'])
    rel = lambda ts: int(ts) - t0 + 1_000_000
    conn = {'connId': 1, 'tgid': 100, 'role': first['role'], 'sawStart': True, 'transport': 'tcp',
            'localAddr': local, 'localPort': lport, 'remoteAddr': remote, 'remotePort': rport}
    lines = [json.dumps({'session': {'conn': conn}}, separators=(',', ':'))]
    pos = {'egress': 0, 'ingress': 0}
    for e in events:
        if e['type'] == 'close':
            lines.append(json.dumps({'close': rel(e['ts'])}))
            continue
        if e['type'] != 'data':
            continue
        data = base64.b64decode(e['data'])
        t = rel(e['ts'])
        lines.append(json.dumps({'side': e['dir'], 'pos': pos[e['dir']], 'startNs': t, 'endNs': t, 'syscallStart': True,
                                 'data': e['data']}, separators=(',', ':')))
        if len(data) < e['size']:
            lines.append(json.dumps({'gap': {'side': e['dir'], 'pos': pos[e['dir']] + len(data), 'bytes': e['size'] - len(data), 'atNs': t}},
                                    separators=(',', ':')))
        pos[e['dir']] += e['size']
    return lines


def record(tls_flags, curl_flags, names):
    with tempfile.TemporaryDirectory() as d:
        pki(d)
        agent = subprocess.Popen([BIN, 'capture', '--json', '--exe', 'openssl', '--exe', 'curl', '--capture-bytes', '16384'],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = ''
        while 'ready' not in ready:
            line = agent.stderr.readline()
            if line == '':
                raise RuntimeError('agent exited')
            ready += line
        port = free_port()
        server = subprocess.Popen(['openssl', 's_server', '-accept', f'127.0.0.1:{port}', '-cert', 'server.pem', '-key', 'server.key',
                                   '-www', '-naccept', '1', *tls_flags], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        subprocess.run(['curl', '-sS', '-o', '/dev/null', '--cacert', os.path.join(d, 'ca.pem'), *curl_flags, f'https://127.0.0.1:{port}/'],
                       check=True)
        server.wait(timeout=10)
        time.sleep(0.5)
        agent.send_signal(2)
        out, _ = agent.communicate(timeout=15)
    events = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    by_conn = {}
    for e in events:
        if e['type'] in ('open', 'data', 'close') and (e['local'].endswith(f':{port}') or e['remote'].endswith(f':{port}')):
            by_conn.setdefault((e['pid'], e['conn']), []).append(e)
    for (pid, conn), evs in by_conn.items():
        comm = evs[0]['comm']
        role = evs[0]['role']
        name = names.get(role)
        if name is None or not any(e['type'] == 'data' for e in evs):
            continue
        lines = to_case(evs)
        case = os.path.join(OUT, name)
        os.makedirs(case, exist_ok=True)
        with open(os.path.join(case, 'events.jsonl'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print(f'{name}: {comm} pid {pid} conn {conn}, {len(lines) - 1} events', file=sys.stderr)


record(['-tls1_3'], ['--tlsv1.3'], {'server': 'openssl-server-tls13', 'client': 'curl-client-tls13'})
record(['-tls1_2'], ['--tlsv1.2', '--tls-max', '1.2'], {'server': 'openssl-server-tls12', 'client': 'curl-client-tls12'})
