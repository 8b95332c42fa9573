module ebpf-otel-sidecar/test/e2e/programs/go/https

go 1.19
