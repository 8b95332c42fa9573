// TLS plaintext: the `tls` section of the configuration file and the flags
// above it. On by default where the kernel has uprobes: the probes cost
// nothing to processes that are not selected, and one attachment per
// library file serves every selected process.

import { flagString, positiveInt } from '../../config/flags';
import { setting } from '../../config/setting';
import { bool, int } from '../../config/shapes';
import { DEFAULT_TLS_MAX_FILES } from '../../capture/uprobes/attach-manager';
import type { FeatureConfig } from '../feature';
import type { TlsFeatureOptions } from './tls';

interface TlsFile {
  readonly enabled?: boolean;
  readonly max_files?: number;
}

const MAX_FILES_LIMIT = 4096;

export const TLS_CONFIG: FeatureConfig<TlsFeatureOptions> = {
  section: 'tls',
  settings: {
    enabled: setting(bool(), "plaintext of TLS connections through uprobes on OpenSSL's SSL_read/SSL_write and Go's crypto/tls Read/Write (default: on where the kernel has uprobes)", {
      default: 'true',
      flags: ['--no-tls'],
    }),
    max_files: setting(int(1, MAX_FILES_LIMIT), 'library files (device + inode) probed at most; the rest counted in `ebpf_otel.tls.files_over_bound`', {
      default: String(DEFAULT_TLS_MAX_FILES),
      flags: ['--tls-max-files'],
    }),
  },
  flags: {
    'no-tls': { type: 'boolean' },
    'tls-max-files': { type: 'string' },
  },
  usage: [
    'TLS plaintext (OpenSSL uprobes; on by default where the kernel has uprobes):',
    '  --no-tls                 no TLS probes: encrypted connections are detected and muted, not parsed',
    `  --tls-max-files N        library files probed at most (default ${DEFAULT_TLS_MAX_FILES}); the rest counted`,
  ],
  resolve(file, flags): TlsFeatureOptions {
    const f = (file ?? {}) as TlsFile;
    const maxFiles = flagString(flags, 'tls-max-files');
    return {
      enabled: flags['no-tls'] === true ? false : (f.enabled ?? true),
      maxFiles: maxFiles !== undefined ? positiveInt('--tls-max-files', maxFiles, MAX_FILES_LIMIT) : (f.max_files ?? DEFAULT_TLS_MAX_FILES),
    };
  },
};
