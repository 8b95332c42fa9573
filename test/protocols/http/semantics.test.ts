// The HTTP semantics HTTP/1 and HTTP/2 records share. Through HTTP/1 sessions
// they are covered by the http1 golden and parse-cache tests; these pin the
// functions themselves, as HTTP/2 calls them.

import test from 'ava';
import {
  authorityOf,
  HTTP_CACHE_ENTRIES,
  httpMetricAttributes,
  httpParseCaches,
  HttpParseCaches,
  httpStatusError,
  KNOWN_HTTP_METHODS,
  parseAuthority,
  redactQuery,
  routeMatcher,
  routeOf,
} from '../../../src/protocols/http/semantics';

test('parseAuthority: host lower-cased, port, IPv6 literal; not an authority is undefined', (t) => {
  t.deepEqual(parseAuthority('Shop.Internal:8080'), { host: 'shop.internal', port: 8080, text: 'Shop.Internal:8080' });
  t.deepEqual(parseAuthority('example.com'), { host: 'example.com', port: undefined, text: 'example.com' });
  t.deepEqual(parseAuthority('[::1]:81'), { host: '::1', port: 81, text: '[::1]:81' });
  t.deepEqual(parseAuthority('[2001:db8::1]'), { host: '2001:db8::1', port: undefined, text: '[2001:db8::1]' });
  t.is(parseAuthority('bad host'), undefined);
  t.is(parseAuthority(''), undefined);
  t.is(parseAuthority(':80'), undefined);
  t.is(parseAuthority('h:65536'), undefined);
  t.is(parseAuthority('h:x'), undefined);
  t.is(parseAuthority('h:123456'), undefined);
});

test('redactQuery: the values of signature parameters only, names case-sensitive', (t) => {
  t.is(redactQuery('a=1&sig=abc&Signature=x&AWSAccessKeyId=k&X-Goog-Signature=g&b'), 'a=1&sig=REDACTED&Signature=REDACTED&AWSAccessKeyId=REDACTED&X-Goog-Signature=REDACTED&b');
  t.is(redactQuery('SIG=abc&sig&=sig'), 'SIG=abc&sig&=sig');
  t.is(redactQuery(''), '');
});

test('httpStatusError: servers from 500, clients from 400, as the code string', (t) => {
  t.is(httpStatusError(true, 499), undefined);
  t.is(httpStatusError(true, 500), '500');
  t.is(httpStatusError(false, 399), undefined);
  t.is(httpStatusError(false, 404), '404');
  t.is(httpStatusError(true, undefined), undefined);
  t.is(httpStatusError(false, undefined), undefined);
});

test('KNOWN_HTTP_METHODS: RFC 9110 methods and PATCH, case-sensitive', (t) => {
  t.deepEqual([...KNOWN_HTTP_METHODS].sort(), ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);
  t.false(KNOWN_HTTP_METHODS.has('get'));
});

test('httpParseCaches and routeMatcher: one per options object / route list', (t) => {
  const options = {};
  t.is(httpParseCaches(options), httpParseCaches(options));
  t.not(httpParseCaches(options), httpParseCaches({}));
  const routes = ['/users/:id'];
  t.is(routeMatcher(routes), routeMatcher(routes));
  t.is(routeMatcher(undefined), routeMatcher([]));
  t.is(routeMatcher(routes).route('/users/42'), '/users/:id');
  t.is(routeMatcher(undefined).route('/users/42'), '/users/{id}');
});

test('routeOf and authorityOf: cached values are what parsing gives; a full cache empties, reported once', (t) => {
  const caches = new HttpParseCaches();
  let resets = 0;
  const onReset = (): void => void resets++;
  const routes = routeMatcher(undefined);
  t.is(routeOf(caches, routes, '/orders/7', onReset), '/orders/{id}');
  t.is(routeOf(caches, routes, '/orders/7', onReset), '/orders/{id}');
  t.is(routeOf(caches, routes, 'no-slash', onReset), undefined);
  t.is(caches.routes.size, 1);
  const a = authorityOf(caches, 'API.example:443', onReset);
  t.deepEqual(a, { host: 'api.example', port: 443, text: 'API.example:443' });
  t.is(authorityOf(caches, 'API.example:443', onReset), a);
  t.is(authorityOf(caches, 'bad host', onReset), undefined);
  t.is(authorityOf(caches, 'bad host', onReset), undefined);
  t.is(caches.authorities.size, 2);
  for (let i = 0; i < HTTP_CACHE_ENTRIES; i++) authorityOf(caches, `h${i}`, onReset);
  t.is(resets, 1);
  t.is(caches.authorities.size, 2);
  t.is(authorityOf(caches, 'bad host', onReset), undefined);
  t.is(resets, 1);
});

test('httpMetricAttributes: the attribute set and span name; equal values share the frozen set', (t) => {
  const caches = new HttpParseCaches();
  const server = httpMetricAttributes(caches, true, false, 'GET', 200, '/users/{id}', '2', undefined, undefined, undefined);
  t.deepEqual({ ...server.attributes }, {
    'http.request.method': 'GET',
    'http.response.status_code': 200,
    'http.route': '/users/{id}',
    'url.scheme': 'http',
    'network.protocol.version': '2',
  });
  t.is(server.name, 'GET /users/{id}');
  t.true(Object.isFrozen(server.attributes));
  t.is(httpMetricAttributes(caches, true, false, 'GET', 200, '/users/{id}', '2', undefined, undefined, undefined).attributes, server.attributes);
  const other = httpMetricAttributes(caches, true, false, 'GET', 200, '/users/{id}', '1.1', undefined, undefined, undefined);
  t.not(other.attributes, server.attributes);
  t.is(other.attributes['network.protocol.version'], '1.1');

  const client = httpMetricAttributes(caches, false, true, '_OTHER', undefined, undefined, '', 'api.example', 443, 'timeout');
  t.deepEqual({ ...client.attributes }, {
    'http.request.method': '_OTHER',
    'url.scheme': 'https',
    'server.address': 'api.example',
    'server.port': 443,
    'error.type': 'timeout',
  });
  t.is(client.name, 'HTTP');
});
