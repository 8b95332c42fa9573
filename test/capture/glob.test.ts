import test from 'ava';
import { globToRegExp, hasGlobMagic } from '../../src/capture/glob';

test('globs: * ? [] anchored, dots literal', (t) => {
  const m = (p: string, s: string) => globToRegExp(p).test(s);
  t.true(m('python3*', 'python3.11'));
  t.true(m('python3*', 'python3'));
  t.false(m('python3*', 'ipython3'));
  t.true(m('node?', 'node2'));
  t.false(m('node?', 'node'));
  t.true(m('py[0-9]', 'py3'));
  t.false(m('py[!0-9]', 'py3'));
  t.false(m('python3.11', 'python3x11'), 'dot is literal');
  t.true(m('a+b', 'a+b'));
  t.true(m('x[', 'x['), 'unclosed bracket is literal');
  t.true(hasGlobMagic('a*'));
  t.false(hasGlobMagic('python3.11'));
});
