import test from 'ava';
import { substitute } from '../../src/config/substitute';

test('substitution: ${VAR}, ${VAR:-default}, $${ for a literal, errors for the rest', (t) => {
  const env = { A: 'x', EMPTY: '' };
  t.deepEqual(substitute('plain $HOME text', env), { value: 'plain $HOME text', substituted: false });
  t.deepEqual(substitute('a=${A}, b=${B:-two}, e=${EMPTY:-dflt}, raw=${EMPTY}.', env), { value: 'a=x, b=two, e=dflt, raw=.', substituted: true });
  t.deepEqual(substitute('${B:-}', env), { value: '', substituted: true });
  t.deepEqual(substitute('${B:-a:-b}', env), { value: 'a:-b', substituted: true });
  t.deepEqual(substitute('keep $${A} and ${A}', env), { value: 'keep ${A} and x', substituted: true });
  t.deepEqual(substitute('$${A}', env), { value: '${A}', substituted: false });
  t.deepEqual(substitute('${B}', env), { problem: 'environment variable B is not set (write ${B:-default} to give a default)' });
  t.deepEqual(substitute('${A', env), { problem: 'unclosed ${ in "${A" (write $${ for a literal ${)' });
  t.deepEqual(substitute('${A-x}', env), { problem: 'bad substitution ${A-x}: write ${NAME} or ${NAME:-default} (write $${ for a literal ${)' });
  t.deepEqual(substitute('${}', env), { problem: 'bad substitution ${}: write ${NAME} or ${NAME:-default} (write $${ for a literal ${)' });
});
