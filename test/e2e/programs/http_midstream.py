"""A keep-alive client that sends one request before the agent attaches and
two after. The server thread is already blocked in recv() for the second when
the agent attaches, so that read's bytes are never captured: its response
must stay unpaired, and only the third request may become a span.
Prints {"pid"} and waits for a stdin line after the first request."""
import http.client
import json
import os
import sys

port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", "/items/1000")
conn.getresponse().read()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
conn.request("GET", "/items/1001")
conn.getresponse().read()
conn.request("GET", "/items/1002")
r = conn.getresponse()
r.read()
conn.close()
print(json.dumps({"status": r.status}), flush=True)
