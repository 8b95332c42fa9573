// The pure parts of bench/bpf-cost.ts: which programs are costed as library
// calls (and which of them at return), and the attach time read from the agent's summary at stop.

import test from 'ava';
import { isReturnProbe, isUprobe, parseAttachTime } from '../../bench/bpf-cost';

test('bpf cost: uprobe and uretprobe programs are library calls, tracepoint programs are not', (t) => {
  for (const name of ['uprobe_ssl_read', 'uretprobe_ssl_read', 'uprobe_ssl_write_ex', 'uprobe_go_tls_read']) t.true(isUprobe(name), name);
  for (const name of ['tp_sys_exit_read', 'raw_tp_sched_process_fork', 'tcph_inet_sock_set_state', 'ureprobe_x']) t.false(isUprobe(name), name);
});

test('bpf cost: uretprobes and the Go return-instruction probes run at return, the rest of the uprobes at entry', (t) => {
  for (const name of ['uretprobe_ssl_read', 'uretprobe_ssl_write_ex', 'uprobe_go_tls_read_ret', 'uprobe_go_tls_write_ret']) t.true(isReturnProbe(name), name);
  for (const name of ['uprobe_ssl_read', 'uprobe_go_tls_read', 'uprobe_go_tls_handshake', 'uprobe_ssl_free', 'tp_sys_exit_read']) t.false(isReturnProbe(name), name);
});

test('bpf cost: attach time from the tls summary line the agent logs at stop', (t) => {
  const stderr =
    'ebpf-otel info: captured 10 events (lost 0 in the kernel, 0 behind the native queue)\n' +
    'ebpf-otel info: tls: 1 library files probed (1 detached after their last process), 0 failed to attach, 0 over the bound of 64; ' +
    'attach time 13.4 ms in all, slowest file 13.4 ms; 2 process scans\n';
  t.deepEqual(parseAttachTime(stderr), { files: 1, totalMs: 13.4, slowestFileMs: 13.4 });
  t.is(parseAttachTime('ebpf-otel info: captured 10 events\n'), undefined);
});
