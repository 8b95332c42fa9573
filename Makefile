# Build graph: BPF objects -> skeletons -> native addon; TypeScript -> dist/.
# `scripts/run` installs the toolchain first; these targets assume it is there.

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
BUILD := build
BPF_BUILD := $(BUILD)/bpf
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BPF_BUILD)/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BPF_BUILD)/%.skel.h,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/*.h bpf/*/*.h)
NATIVE := native/build/Release/ebpf_otel.node
NODE_GYP := node ../node_modules/node-gyp/bin/node-gyp.js
TS_SRCS := $(shell find src test bench -name '*.ts' 2>/dev/null) tsconfig.json

.PHONY: all build bpf native ts test test-unit clean
# A recipe that fails leaves no half-written target for the next make to trust.
.DELETE_ON_ERROR:
all: build
build: bpf native ts

bpf: $(BPF_OBJS) $(BPF_SKELS)

# CO-RE: types come from the build machine's BTF; relocations make the object
# run on any kernel with BTF.
$(BPF_BUILD)/vmlinux.h:
	@mkdir -p $(BPF_BUILD)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BPF_BUILD)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-I$(BPF_BUILD) -Ibpf -c $< -o $@.tmp
	$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(BPF_BUILD)/%.skel.h: $(BPF_BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

native: $(NATIVE)
$(NATIVE): $(BPF_SKELS) $(wildcard native/*.cc native/*.h) native/binding.gyp
	cd native && PYTHON=/usr/bin/python3 $(NODE_GYP) rebuild --nodedir=/usr

# Syscall and errno names from the build machine's kernel headers.
SYSCALL_TABLE := src/capture/syscall-table.generated.ts
$(SYSCALL_TABLE): scripts/gen-syscall-table.js
	node scripts/gen-syscall-table.js $@

ts: dist/.built
# tsc rebuilds everything anyway; starting clean keeps deleted sources' output
# (stale tests above all) from lingering in dist/.
dist/.built: $(TS_SRCS) $(SYSCALL_TABLE)
	rm -rf dist
	npx tsc -p tsconfig.json
	@touch $@

test: build
	node scripts/test.js

clean:
	rm -rf $(BUILD) native/build dist

# Replays recorded native batches through the user-space pipeline (decode ->
# correlate -> HTTP/1, HTTP/2, gRPC -> spans/metrics -> OTLP protobuf, no network).
# Then the budget per stage (docs/PERFORMANCE.md).
# BENCH_ARGS, e.g. "--seconds 10 --scenario keepalive,http2,grpc --json",
# "--stage-seconds 1.5 --stage-rounds 3", "--stages-scenario grpc", "--no-stages".
.PHONY: bench-pipeline
bench-pipeline: ts
	node --expose-gc dist/bench/pipeline.js $(BENCH_ARGS)

# What the agent costs a traced server (Node http, nginx, grpc-js): untraced, agent
# and (Node) OpenTelemetry SDK arms interleaved over rounds; wrk (grpc: a grpc-js
# client) saturation and an open-loop run; needs root, nginx and wrk (scripts/setup.sh).
# BENCH_ARGS, e.g. "--seconds 10 --rounds 3 --targets node,nginx,grpc --json".
# What short-lived processes leave behind in the agent: heap and RSS every
# --step processes (exec, one request, exit each), replayed without a kernel.
# BENCH_ARGS, e.g. "--processes 20000 --step 5000 --json".
.PHONY: bench-churn
bench-churn: ts
	node --expose-gc dist/bench/process-churn.js $(BENCH_ARGS)

.PHONY: bench-overhead
bench-overhead: build
	node dist/bench/overhead.js $(BENCH_ARGS)

# What the agent costs per HTTP/1 keep-alive request end to end (Node http
# target, real agent, OTLP/gRPC to an in-process receiver, open loop at fixed
# rates): achieved rate, agent and server CPU us/request, spans/requests, loss
# counters, RSS idle (with its parts), peak and after; needs root.
# BENCH_ARGS, e.g. "--rates 5000,10000,20000 --seconds 15 --rounds 2 --json".
.PHONY: bench-agent-cost
bench-agent-cost: build
	node dist/bench/agent-cost.js $(BENCH_ARGS)

# What the OTLP/gRPC transport costs per span: real encoded requests of 1024
# spans, one at a time, to a sink in its own process.
# BENCH_ARGS, e.g. "--seconds 5 --rounds 5 --spans 1024 --gzip".
.PHONY: bench-export
bench-export: ts
	node dist/bench/export-cost.js $(BENCH_ARGS)

# What a stream of unknown bytes costs the agent, with and without kernel
# muting of ignored connections (arms alternated per round); needs root.
# BENCH_ARGS, e.g. "--seconds 8 --rounds 3 --chunk 1024 --json".
.PHONY: bench-unknown-traffic
bench-unknown-traffic: build
	node dist/bench/unknown-traffic.js $(BENCH_ARGS)

# What the agent can follow on this machine: an open-loop ramp of request
# rates against nginx traced by the agent (loss read from the agent's own
# metrics, spans counted at a local OTLP receiver), then agent memory with
# 10 000 idle keep-alive connections; needs root and nginx.
# BENCH_ARGS, e.g. "--rates 5000,10000,20000", "--sustain 20000 --seconds 60",
# "--phases idle --idle 10000", "--json"; at the untraced limit of the Node
# server on its own core (server pinned to CPU 1, the rest to CPU 0):
# "--target node --find-limit", then "--target node --sustain RATE --pin 1:0
# --phases baseline,ramp" per rate, or all in one: "--target node --at-limit
# --seconds 60".
.PHONY: bench-capacity
bench-capacity: build
	node dist/bench/capacity.js $(BENCH_ARGS)

# What syscall latency tracing costs: a C program making one-byte pipe
# writes and reads, untraced, selected and unselected (programs attached),
# rounds interleaved; prints the slowdown, the time added per syscall and the
# agent's CPU per million syscalls; needs root and cc.
# BENCH_ARGS, e.g. "--seconds 3 --rounds 5 --rate 1000000 --json".
.PHONY: bench-syscalls
bench-syscalls: build
	node dist/bench/syscall-cost.js $(BENCH_ARGS)

# What the BPF programs cost, per program, from the kernel's run accounting
# (kernel.bpf_stats_enabled, put back afterwards): ns per HTTP request in a
# traced Node server's syscalls (wrk keep-alive) and ns per syscall of an
# unselected process; needs root, wrk and cc.
# BENCH_ARGS, e.g. "--seconds 3 --rounds 3 --baseline-addon OLD.node --json".
.PHONY: bench-bpf
bench-bpf: build
	node dist/bench/bpf-cost.js $(BENCH_ARGS)

# What the runtime link probes cost the probed process per request: the Go
# links e2e program's frontend (agent with the Go link probes, --no-link-go,
# no agent) and an nginx worker proxying to its own return-200 server under
# wrk (agent with the nginx link probes, --no-link-nginx), arms rotated per
# round; needs root, go, nginx and wrk (nginx is skipped without wrk).
# BENCH_ARGS, e.g. "--target go,nginx --requests 20000 --concurrency 16 --rounds 3 --seconds 8 --json".
.PHONY: bench-link-cost
bench-link-cost: build
	node dist/bench/link-cost.js $(BENCH_ARGS)
