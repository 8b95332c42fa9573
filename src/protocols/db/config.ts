// The configuration section every database protocol has: what db.query.text
// carries. Sanitized by default (literals replaced by `?`): the raw text is
// user data, so it leaves the host only when the user opts in, in the file,
// an environment variable or a flag (flags win, then the variable, then the
// file), per protocol.

import { UsageError } from '../../config/flags';
import { setting } from '../../config/setting';
import { oneOf } from '../../config/shapes';
import type { ProtocolConfig } from '../types';
import { QUERY_TEXT_MODES, type DbOptions, type QueryTextMode } from './semantics';

interface DbFile {
  readonly query_text?: QueryTextMode;
}

function mode(raw: unknown, where: string): QueryTextMode | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw === 'string' && (QUERY_TEXT_MODES as readonly string[]).includes(raw)) return raw as QueryTextMode;
  throw new UsageError(`${where} takes ${QUERY_TEXT_MODES.join(', ')}, got ${JSON.stringify(raw)}`);
}

/**
 * Section `section` with `query_text`, the flag `--<section>-query-text` and
 * the variable `EBPF_OTEL_<SECTION>_QUERY_TEXT`. `sanitizedMeans` completes
 * the documentation line ("literals replaced by ?").
 */
export function dbProtocolConfig(section: string, sanitizedMeans: string): ProtocolConfig<DbOptions> {
  const flag = `${section}-query-text`;
  const variable = `EBPF_OTEL_${section.toUpperCase()}_QUERY_TEXT`;
  return {
    section,
    settings: {
      query_text: setting(oneOf(QUERY_TEXT_MODES), `what \`db.query.text\` carries: \`sanitized\` (${sanitizedMeans}), \`raw\` (as sent: user data leaves the host) or \`off\``, {
        default: 'sanitized',
        env: [variable],
        flags: [`--${flag}`],
      }),
    },
    flags: { [flag]: { type: 'string' } },
    usage: [`${`  --${flag} MODE`.padEnd(26)} db.query.text: sanitized (default), raw or off`],
    resolve(file, flags, common, env): DbOptions {
      const f = (file ?? {}) as DbFile;
      const queryText = mode(flags[flag], `--${flag}`) ?? mode(env[variable], variable) ?? f.query_text ?? 'sanitized';
      return { ...common, queryText };
    },
  };
}
