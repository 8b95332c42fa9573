#!/usr/bin/env bash
# Idempotent setup for a Debian 12 machine, as root: Debian packages that are
# missing, npm dependencies when the lock file changed, then the build
# (BPF objects, skeletons, native addon, TypeScript). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build toolchain for BPF and the addon, plus what the tests drive.
PACKAGES=(
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3
  # iproute2: `ip link set lo up` in a test's own network namespace (made by
  # unshare and joined by nsenter, from util-linux, which Debian always has).
  curl libcap2-bin iproute2
  # nginx: the link tests start their own (test/helpers/nginx-server.ts: -p a
  # temporary folder), no Debian service.
  nginx wrk
  # TLS tests: certificates made with the openssl CLI; Go builds the Go
  # HTTPS test programs (crypto/tls, not probed by the OpenSSL uprobes).
  openssl golang-go
  # gnutls-serv: an HTTPS server over GnuTLS, a library the agent names but
  # does not probe (the unprobed-TLS test).
  gnutls-bin
  # nghttp: a real HTTP/2 client (nghttp2's), for the HTTP/2 captures and tests.
  nghttp2-client
  # grpcio (gRPC C-core) and grpc-go (sources in GOPATH layout under
  # /usr/share/gocode, built offline with GO111MODULE=off): gRPC peers on other
  # HTTP/2 stacks than grpc-js (test/e2e/grpc.ebpf.test.ts, grpc-peers.ebpf.test.ts).
  python3-grpcio
  golang-google-grpc-dev
  # Database servers and their command-line clients: the tests start their
  # own servers on loopback in temporary folders (initdb/pg_ctl,
  # mariadb-install-db/mariadbd, redis-server); psycopg2 is the driver of the
  # Python service that queries PostgreSQL per request.
  postgresql postgresql-client mariadb-server mariadb-client redis-server redis-tools
  python3-psycopg2
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages and loads eBPF programs)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js >= 20.19 is required (not found on PATH)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "setup: Node.js >= 20.19 is required, found $(node --version)" >&2
  exit 1
fi

# Dependencies need no install scripts: the addon is built by make, not by npm.
# A node_modules that is a symbolic link (a git worktree sharing another
# checkout's) is left alone: npm ci would empty the directory it points to.
if [ -L node_modules ]; then
  echo "setup: node_modules is a symbolic link to $(readlink node_modules), not reinstalled"
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
fi

make build
