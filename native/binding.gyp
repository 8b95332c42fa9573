# Built by `make native` (node-gyp rebuild --nodedir=/usr) after `make bpf`:
# the skeleton build/bpf/socket_trace.skel.h embeds the BPF object.
{
  'variables': {
    # Where socket_trace.skel.h is; override with -Dskel_dir=... to build
    # against another skeleton.
    'skel_dir%': '../build/bpf',
  },
  'targets': [
    {
      'target_name': 'ebpf_otel',
      'sources': [
        'addon.cc',
        'bpf_error.cc',
        'kernel_features.cc',
        'js_util.cc',
        'libbpf_log.cc',
        'ring_poller.cc',
        'session.cc',
        'syscall_latency_maps.cc',
        'syscall_latency_session.cc',
        'tcp_health_maps.cc',
        'tcp_health_session.cc',
        'trace_program.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all",
      ],
      'include_dirs': ['<(skel_dir)', '../bpf'],
      'defines': ['NAPI_VERSION=9', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags_cc': ['-std=gnu++17', '-Wall', '-Wextra', '-Wno-missing-field-initializers', '-fvisibility=hidden'],
      'libraries': ['-lbpf', '-lelf', '-lz'],
    },
  ],
}
