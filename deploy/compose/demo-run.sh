#!/usr/bin/env bash
# Starts the demo workload the way `ebpf-otel demo` does (src/cli/demo.ts):
# the backend, the frontend calling it, then the load loop at RATE requests a
# second. Loopback ports: the container has its own network namespace, and
# the load loop is the only client. Each process names its service in
# OTEL_SERVICE_NAME, which the agent reads from /proc/<pid>/environ.
# When any of the three exits the script exits non-zero, so `docker compose
# ps` shows a broken demo instead of a quiet one; SIGTERM stops all three.
#   DEMO_DIR (default /opt/demo), FRONTEND_PORT (18080), BACKEND_PORT (18081), RATE (2)
set -uo pipefail
cd "${DEMO_DIR:-/opt/demo}"
frontend_port="${FRONTEND_PORT:-18080}"
backend_port="${BACKEND_PORT:-18081}"

trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT

OTEL_SERVICE_NAME=demo-backend PORT="$backend_port" /usr/bin/python3 backend.py &
OTEL_SERVICE_NAME=demo-frontend PORT="$frontend_port" BACKEND_URL="http://127.0.0.1:$backend_port" node frontend.js &

# The first requests would fail on a frontend not listening yet.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$frontend_port") 2>/dev/null; then break; fi
  sleep 0.1
done

OTEL_SERVICE_NAME=demo-load TARGET_URL="http://127.0.0.1:$frontend_port" RATE="${RATE:-2}" node load.js &

wait -n
status=$?
echo "demo-run: a demo process exited (status $status); stopping the others" >&2
kill $(jobs -p) 2>/dev/null
exit 1
