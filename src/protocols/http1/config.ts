// HTTP/1's configuration: the `http` section of the configuration file, the
// flags above it, and the options its sessions take. The loader, the
// generated settings table and the example file's check read it from the
// protocol registry; nothing outside this folder names these settings.

import { UsageError, routeProblem } from '../../config/flags';
import { setting } from '../../config/setting';
import { bool, checked, headerName, list } from '../../config/shapes';
import type { CommonProtocolOptions, ProtocolConfig } from '../types';

export interface Http1Options extends CommonProtocolOptions {
  /** User route patterns such as "/users/:id", tried before the default heuristic. */
  readonly routes?: readonly string[];
  /** Record url.query (off by default: queries carry secrets). */
  readonly captureQuery?: boolean;
  /**
   * Header values to record as `http.request.header.<name>` /
   * `http.response.header.<name>` attributes (lower-case names; none by
   * default). Names in `redactHeaders` are never recorded, even if listed.
   */
  readonly captureHeaders?: { readonly request: readonly string[]; readonly response: readonly string[] };
}

const SETTINGS = {
  routes: setting(list(checked('a path pattern starting with /', 'pattern', routeProblem)), 'route patterns such as /users/:id, tried before the heuristic', {
    default: '[]',
    flags: ['--route'],
  }),
  capture_query: setting(bool(), 'record `url.query` (query strings often carry secrets)', { default: 'false', flags: ['--capture-query'] }),
  capture_headers: {
    request: setting(list(headerName()), 'request headers recorded as `http.request.header.<name>`; a redacted name is refused', { default: '[]' }),
    response: setting(list(headerName()), 'response headers recorded as `http.response.header.<name>`; a redacted name is refused', { default: '[]' }),
  },
};

/** The section as the loader returns it (validated; every key optional). */
interface Http1File {
  readonly routes?: readonly string[];
  readonly capture_query?: boolean;
  readonly capture_headers?: { readonly request?: readonly string[]; readonly response?: readonly string[] };
}

export const HTTP1_CONFIG: ProtocolConfig<Http1Options> = {
  section: 'http',
  settings: SETTINGS,
  flags: { route: { type: 'string', multiple: true }, 'capture-query': { type: 'boolean' } },
  usage: [
    '  --route PATTERN          an HTTP route such as /users/:id (repeatable); others are inferred',
    '  --capture-query          record url.query (off: query strings often carry secrets)',
  ],
  resolve(file, flags, common): Http1Options {
    const f = (file ?? {}) as Http1File;
    const routes = flags['route'] as string[] | undefined;
    for (const r of routes ?? []) {
      if (routeProblem(r) !== undefined) throw new UsageError(`--route takes a path pattern starting with /, got ${JSON.stringify(r)}`);
    }
    return {
      ...common,
      routes: routes ?? f.routes ?? [],
      captureQuery: (flags['capture-query'] as boolean | undefined) ?? f.capture_query ?? false,
      captureHeaders: { request: f.capture_headers?.request ?? [], response: f.capture_headers?.response ?? [] },
    };
  },
  check(file, redacted, problem) {
    const f = (file ?? {}) as Http1File;
    for (const side of ['request', 'response'] as const) {
      (f.capture_headers?.[side] ?? []).forEach((name, i) => {
        if (!redacted.names.includes(name)) return;
        problem(
          `capture_headers.${side}`,
          i,
          `${name} is in the redaction list (${redacted.fromFile ? 'redaction.headers' : 'the default one'}): its value is never recorded. ` +
            'Remove it here, or remove it from redaction.headers deliberately',
        );
      });
    }
  },
};
