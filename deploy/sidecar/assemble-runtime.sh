#!/usr/bin/env bash
# Copies what the agent needs at run time out of a built tree into DEST: the
# compiled JavaScript, the native addon (the BPF programs are compiled into it
# by the skeleton), package metadata and production dependencies only. The
# Dockerfile's runtime stage is exactly this directory; the test suite runs the
# same script and starts the agent from its output.
#   deploy/sidecar/assemble-runtime.sh DEST
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:?usage: assemble-runtime.sh DEST}"
mkdir -p "$dest/native/build/Release" "$dest/bin"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cp -r "$src/dist" "$dest/dist"
# Tests, benchmarks and source maps stay behind.
rm -rf "$dest/dist/test" "$dest/dist/bench"
find "$dest/dist" -name '*.map' -delete
cp "$src/native/build/Release/ebpf_otel.node" "$dest/native/build/Release/"
cp "$src/bin/ebpf-otel" "$dest/bin/"
# The opt-in Node.js preload (NODE_OPTIONS=--require .../ebpf-otel-preload.js) for
# the applications, shipped so a shared volume can hand it to them.
cp -r "$src/preload" "$dest/preload"
# Production dependencies only, from the lock file, no install scripts.
(cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
