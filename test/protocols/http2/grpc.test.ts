// gRPC pieces of the HTTP/2 session: content-type, status, timeout, method
// from :path, and the message-prefix counter fed at every split and across gaps.

import test from 'ava';
import {
  decodeGrpcMessage,
  GrpcMessageCounter,
  grpcMethodOf,
  grpcStatusIsError,
  grpcStatusName,
  isGrpcContentType,
  parseGrpcStatus,
  parseGrpcTimeout,
} from '../../../src/protocols/http2/grpc';

test('content-type: application/grpc and its +format / ;params forms only', (t) => {
  for (const v of ['application/grpc', 'application/grpc+proto', 'application/grpc+json', 'Application/GRPC', 'application/grpc;charset=utf-8']) t.true(isGrpcContentType(v), v);
  for (const v of [undefined, '', 'application/json', 'application/grpc-web', 'application/grpc-web+proto', 'application/grpcx', 'text/application/grpc']) t.false(isGrpcContentType(v), String(v));
});

test('grpc-status: digits only, names by code, a code past 16 as its number', (t) => {
  t.is(parseGrpcStatus('0'), 0);
  t.is(parseGrpcStatus('16'), 16);
  t.is(parseGrpcStatus('2147483647'), 2147483647);
  for (const v of [undefined, '', '-1', '1a', ' 1', '2147483648', '12345678901']) t.is(parseGrpcStatus(v), undefined, String(v));
  t.is(grpcStatusName(0), 'OK');
  t.is(grpcStatusName(4), 'DEADLINE_EXCEEDED');
  t.is(grpcStatusName(16), 'UNAUTHENTICATED');
  t.is(grpcStatusName(17), '17');
});

test('span status: a SERVER errs only for the conventions list, a CLIENT for anything but OK', (t) => {
  const server = [...Array(17).keys()].filter((c) => grpcStatusIsError(true, c));
  t.deepEqual(server, [2, 4, 12, 13, 14, 15]);
  const client = [...Array(17).keys()].filter((c) => grpcStatusIsError(false, c));
  t.deepEqual(client, [...Array(17).keys()].slice(1));
});

test('grpc-timeout: value and unit, at most 8 digits', (t) => {
  t.is(parseGrpcTimeout('1S'), 1);
  t.is(parseGrpcTimeout('2H'), 7200);
  t.is(parseGrpcTimeout('3M'), 180);
  t.is(parseGrpcTimeout('250m'), 0.25);
  t.is(parseGrpcTimeout('99999999u'), 99.999999);
  t.is(parseGrpcTimeout('5n'), 5e-9);
  for (const v of [undefined, 'S', '1', '1s', '123456789S', '-1S', '1.5S', ' 1S']) t.is(parseGrpcTimeout(v), undefined, String(v));
});

test('rpc.method: /Service/Method only', (t) => {
  t.is(grpcMethodOf('/test.echo.Echo/Unary'), 'test.echo.Echo/Unary');
  t.is(grpcMethodOf('/Echo/Echo'), 'Echo/Echo');
  for (const p of ['', '/', '//x', '/a/', '/a', 'a/b', '/a/b/c', '/a/b?x=1', '/a/b c', '/a/b#f', '/grpc']) t.is(grpcMethodOf(p), undefined, p);
});

/** Messages of these lengths, flags as given, framed as gRPC writes them. */
function framed(lengths: number[], compressed: number[] = []): Buffer {
  return Buffer.concat(lengths.map((n, i) => {
    const b = Buffer.alloc(5 + n, 0x61);
    b[0] = compressed.includes(i) ? 1 : 0;
    b.writeUInt32BE(n, 1);
    return b;
  }));
}

test('message counter: exact counts and bytes at every split point', (t) => {
  const bytes = framed([0, 3, 300, 70000, 1]);
  for (let k = 0; k <= bytes.length; k += k < 400 ? 1 : 997) {
    const c = new GrpcMessageCounter();
    c.data(bytes.subarray(0, k));
    c.data(bytes.subarray(k));
    c.end();
    t.deepEqual([c.messages, c.bytes, c.compressed, c.lost], [5, 70304, false, false], `split at ${k}`);
  }
});

test('message counter: the compressed flag, a bad flag byte, a message cut short', (t) => {
  const c = new GrpcMessageCounter();
  c.data(framed([4, 4], [1]));
  c.end();
  t.deepEqual([c.messages, c.bytes, c.compressed, c.lost], [2, 8, true, false]);
  const bad = new GrpcMessageCounter();
  bad.data(Buffer.from([2, 0, 0, 0, 1, 0x61]));
  t.true(bad.lost);
  const cut = new GrpcMessageCounter();
  cut.data(framed([10]).subarray(0, 12));
  cut.end();
  t.true(cut.lost);
});

test('message counter: a gap inside a message is skipped exactly; one over a prefix loses the framing', (t) => {
  const bytes = framed([100, 5]);
  const c = new GrpcMessageCounter();
  c.data(bytes.subarray(0, 10));
  c.gap(90);
  c.data(bytes.subarray(100));
  c.end();
  t.deepEqual([c.messages, c.bytes, c.lost], [2, 105, false]);
  const d = new GrpcMessageCounter();
  d.data(bytes.subarray(0, 10));
  d.gap(96);
  t.true(d.lost);
});

test('grpc-timeout in milliseconds and finer is divided, not multiplied: 9995m is 9.995 exactly', (t) => {
  t.is(parseGrpcTimeout('9995m'), 9.995);
  t.is(parseGrpcTimeout('9947m'), 9.947);
  t.is(parseGrpcTimeout('1500000u'), 1.5);
});

test('grpc-message: percent-decoded UTF-8, a lone % kept, cut after decoding', (t) => {
  t.is(decodeGrpcMessage('failed%20on%20purpose:%20broken', 256), 'failed on purpose: broken');
  t.is(decodeGrpcMessage('caf%C3%A9 100%', 256), 'café 100%');
  t.is(decodeGrpcMessage('50%zz', 256), '50%zz');
  t.is(decodeGrpcMessage('plain', 256), 'plain');
  t.is(decodeGrpcMessage('a%20'.repeat(100), 256), 'a '.repeat(100).slice(0, 256));
  t.is(decodeGrpcMessage('x'.repeat(300), 256).length, 256);
});
