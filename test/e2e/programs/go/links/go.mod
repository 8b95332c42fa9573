module ebpf-otel-sidecar/test/e2e/programs/go/links

go 1.19
