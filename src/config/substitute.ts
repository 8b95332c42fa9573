// ${VAR} and ${VAR:-default} in the configuration file's string values, so
// that secrets (an OTLP token from a Kubernetes Secret) stay in the
// environment rather than in the file. `$${` stands for a literal `${`.
// No nesting, no other shell forms: anything else between `${` and `}` is an
// error rather than text that silently stays unexpanded.

import type { Env } from '../otel/config';

export type Substituted = { readonly value: string; readonly substituted: boolean } | { readonly problem: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function substitute(text: string, env: Env): Substituted {
  if (!text.includes('${')) return { value: text, substituted: false };
  let out = '';
  let i = 0;
  let substituted = false;
  while (i < text.length) {
    const at = text.indexOf('${', i);
    if (at < 0) {
      out += text.slice(i);
      break;
    }
    if (at > 0 && text[at - 1] === '$') {
      // `$${`: the first `$` escapes; keep one `${` and go on after it.
      out += text.slice(i, at - 1) + '${';
      i = at + 2;
      continue;
    }
    out += text.slice(i, at);
    const close = text.indexOf('}', at + 2);
    if (close < 0) return { problem: `unclosed \${ in ${JSON.stringify(text)} (write $\${ for a literal \${)` };
    const inner = text.slice(at + 2, close);
    const sep = inner.indexOf(':-');
    const name = sep < 0 ? inner : inner.slice(0, sep);
    if (!NAME.test(name)) {
      return { problem: `bad substitution \${${inner}}: write \${NAME} or \${NAME:-default} (write $\${ for a literal \${)` };
    }
    const v = env[name];
    if (sep >= 0) out += v === undefined || v === '' ? inner.slice(sep + 2) : v;
    else if (v === undefined) return { problem: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` };
    else out += v;
    substituted = true;
    i = close + 1;
  }
  return { value: out, substituted };
}
