import test from 'ava';
import type { Http1Options as ProtocolOptions } from '../../../src/protocols/http1/config';
import { HTTP1_DEFAULT_HEADER_TABLES, headerTables, type Http1HeaderTable } from '../../../src/protocols/http1/header-names';

/** Captured names of a table, by capture index, with what they are matched as. */
function names(t: Http1HeaderTable): { name: string; kept: string | undefined; attribute: string }[] {
  const out: { name: string; kept: string | undefined; attribute: string }[] = [];
  for (const list of t.byLength) for (const h of list ?? []) if (h.capture >= 0) out[h.capture] = { name: h.name, kept: h.kept, attribute: t.attributes[h.capture]! };
  return out;
}

test('no capture configured: the shared kept-names tables', (t) => {
  t.is(headerTables({}), HTTP1_DEFAULT_HEADER_TABLES);
  t.is(headerTables({ captureHeaders: { request: [], response: [] } }), HTTP1_DEFAULT_HEADER_TABLES);
  t.deepEqual(HTTP1_DEFAULT_HEADER_TABLES.request.attributes, []);
  t.is(HTTP1_DEFAULT_HEADER_TABLES.request.longest, 'transfer-encoding'.length);
});

test('default redaction wins over the capture list; names lower-cased, deduplicated, non-tokens dropped', (t) => {
  const options: ProtocolOptions = {
    captureHeaders: { request: ['X-Request-Id', 'authorization', 'Cookie', 'x-request-id', 'bad name', 'host'], response: ['Set-Cookie', 'content-type'] },
  };
  const tables = headerTables(options);
  t.deepEqual(names(tables.request), [
    { name: 'x-request-id', kept: undefined, attribute: 'http.request.header.x-request-id' },
    { name: 'host', kept: 'host', attribute: 'http.request.header.host' },
  ]);
  t.deepEqual(names(tables.response), [{ name: 'content-type', kept: undefined, attribute: 'http.response.header.content-type' }]);
  // Kept names are still matched for records.
  t.truthy(tables.response.byLength['content-length'.length]?.some((h) => h.kept === 'content-length' && h.capture < 0));
  t.is(headerTables(options), tables, 'resolved once per options object');
});

test('a custom redaction list replaces the defaults', (t) => {
  const tables = headerTables({
    captureHeaders: { request: ['authorization', 'x-api-key'], response: ['set-cookie', 'x-secret'] },
    redactHeaders: ['X-Api-Key', 'x-secret'],
  });
  t.deepEqual(tables.request.attributes, ['http.request.header.authorization']);
  t.deepEqual(tables.response.attributes, ['http.response.header.set-cookie']);
  t.deepEqual(headerTables({ captureHeaders: { request: ['authorization'], response: [] }, redactHeaders: [] }).request.attributes, [
    'http.request.header.authorization',
  ]);
});

test('a long captured name raises the longest name copied', (t) => {
  const long = 'x-a-rather-long-custom-header-name';
  t.is(headerTables({ captureHeaders: { request: [long], response: [] } }).request.longest, long.length);
});
