# The workload of `ebpf-otel demo` as one container: the Node frontend, the
# threaded Python backend and the load loop from demo/, started by
# demo-run.sh. The agent container joins this container's PID namespace
# (compose.yaml, `pid: "service:demo"`) and traces these processes.
# Build context: the repository root (compose.yaml sets it).
FROM node:20-bookworm-slim
# python3 from Debian: backend.py needs only the standard library.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY demo/backend.py demo/frontend.js demo/load.js /opt/demo/
COPY deploy/compose/demo-run.sh /opt/demo/demo-run.sh
# Plain HTTP on loopback inside the container: nothing is published, the load
# loop is the only client.
CMD ["bash", "/opt/demo/demo-run.sh"]
