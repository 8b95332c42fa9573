"""A keep-alive client that sends one request before the agent attaches and
one after: the first must not become a span, the second must, exactly.
Prints {"pid"} and waits for a stdin line between the two requests."""
import http.client
import json
import os
import sys

port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", "/items/before")
conn.getresponse().read()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
conn.request("GET", "/items/after")
r = conn.getresponse()
r.read()
conn.close()
print(json.dumps({"status": r.status}), flush=True)
