module ebpf-otel-sidecar/test/e2e/programs/go/dwarf_offsets

go 1.19
