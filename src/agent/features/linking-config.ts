// Runtime links: the `linking` section of the configuration file and the
// flags above it. On by default where the kernel has uprobes: the probes
// cost nothing to processes that are not selected, and a selected nginx or
// Go binary pays a few hundred nanoseconds per request at the probed calls.
// The Node.js preload is opted into by the application's own NODE_OPTIONS;
// the agent reads its marks whenever this feature is on.

import { setting } from '../../config/setting';
import { bool } from '../../config/shapes';
import type { FeatureConfig } from '../feature';
import type { LinkingFeatureOptions } from './linking';

interface LinkingFile {
  readonly enabled?: boolean;
  readonly nginx?: boolean;
  readonly go?: boolean;
}

export const LINKING_CONFIG: FeatureConfig<LinkingFeatureOptions> = {
  section: 'linking',
  settings: {
    enabled: setting(bool(), 'parents through the runtime: uprobes on nginx and Go binaries (where the kernel has uprobes), the marks of the Node.js preload', {
      default: 'true',
      flags: ['--no-linking'],
    }),
    nginx: setting(bool(), "nginx's upstream module: each upstream request under the request it proxies", { default: 'true', flags: ['--no-link-nginx'] }),
    go: setting(bool(), "Go's net/http: client calls made while a handler serves a request, under that request", { default: 'true', flags: ['--no-link-go'] }),
  },
  flags: {
    'no-linking': { type: 'boolean' },
    'no-link-nginx': { type: 'boolean' },
    'no-link-go': { type: 'boolean' },
  },
  usage: [
    'Runtime links (parents from inside nginx, Go, Node.js with the preload; on by default, nginx and Go where the kernel has uprobes):',
    '  --no-linking             no runtime probes: CLIENT spans take parents from threads and event loops only',
    "  --no-link-nginx          no probes on nginx's upstream module",
    "  --no-link-go             no probes on Go's net/http",
  ],
  resolve(file, flags): LinkingFeatureOptions {
    const f = (file ?? {}) as LinkingFile;
    return {
      enabled: flags['no-linking'] === true ? false : (f.enabled ?? true),
      nginx: flags['no-link-nginx'] === true ? false : (f.nginx ?? true),
      go: flags['no-link-go'] === true ? false : (f.go ?? true),
    };
  },
};
