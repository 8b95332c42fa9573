// The database record builder and the query-text setting every database
// protocol shares (src/protocols/db/semantics.ts, config.ts).

import test from 'ava';
import { UsageError } from '../../../src/config/flags';
import { parseConfigFile } from '../../../src/config/file';
import { parseRunFlags, resolveRunConfig } from '../../../src/config/run-config';
import { configSchema, settingsTable } from '../../../src/config/schema';
import { dbProtocolConfig } from '../../../src/protocols/db/config';
import { DB_OPERATION_DURATION, DB_SERVER_OPERATION_DURATION, dbRecord, dbSpanName, errorMessageFor, queryTextFor, type DbOptions } from '../../../src/protocols/db/semantics';
import { PROTOCOLS } from '../../../src/protocols/registry';
import type { ConnectionInfo, ProtocolDefinition } from '../../../src/protocols/types';

const CONN: ConnectionInfo = {
  connId: 7,
  tgid: 4242,
  role: 'client',
  sawStart: true,
  encrypted: false,
  transport: 'tcp',
  localAddr: '127.0.0.1',
  localPort: 40000,
  remoteAddr: '127.0.0.2',
  remotePort: 5433,
};

test('a client call: span name from the summary, conventional attributes, duration with low-cardinality attributes only', (t) => {
  const r = dbRecord(
    'postgres',
    CONN,
    'client',
    {
      system: 'postgresql',
      namespace: 'shop',
      operation: 'SELECT',
      collection: 'accounts',
      summary: 'SELECT accounts',
      queryText: 'SELECT * FROM accounts WHERE id = ?',
      returnedRows: 3,
      extra: { 'ebpf_otel.db.user': 'app' },
    },
    1_000_000_000,
    1_002_500_000,
    5,
  );
  t.deepEqual(r, {
    protocol: 'postgres',
    kind: 'client',
    connId: 7,
    tgid: 4242,
    startNs: 1_000_000_000,
    endNs: 1_002_500_000,
    name: 'SELECT accounts',
    attributes: {
      'db.system.name': 'postgresql',
      'db.namespace': 'shop',
      'db.operation.name': 'SELECT',
      'db.collection.name': 'accounts',
      'db.query.summary': 'SELECT accounts',
      'db.query.text': 'SELECT * FROM accounts WHERE id = ?',
      'db.response.returned_rows': 3,
      'server.address': '127.0.0.2',
      'server.port': 5433,
      'network.peer.address': '127.0.0.2',
      'network.peer.port': 5433,
      'ebpf_otel.db.user': 'app',
    },
    status: 'unset',
    sequence: 5,
    measurements: [
      {
        instrument: DB_OPERATION_DURATION,
        value: 0.0025,
        attributes: {
          'db.system.name': 'postgresql',
          'db.namespace': 'shop',
          'db.operation.name': 'SELECT',
          'db.collection.name': 'accounts',
          'db.query.summary': 'SELECT accounts',
          'server.address': '127.0.0.2',
          'server.port': 5433,
        },
      },
    ],
  });
  t.true(Object.isFrozen(r.measurements[0]!.attributes));
});

test('a failed call is an error with the code and a bounded message; a server call names itself as server.*', (t) => {
  const call = { system: 'mysql', operation: 'INSERT', statusCode: '1062', errorType: '1062', statusMessage: 'x'.repeat(2000), batchSize: 1 } as const;
  const r = dbRecord('mysql', { ...CONN, role: 'server' }, 'server', call, 0, 1_000_000, 0);
  t.is(r.name, 'INSERT');
  t.is(r.status, 'error');
  t.is(r.errorType, '1062');
  t.is(r.statusMessage, 'x'.repeat(512));
  t.deepEqual(r.attributes, {
    'db.system.name': 'mysql',
    'db.operation.name': 'INSERT',
    'db.response.status_code': '1062',
    'error.type': '1062',
    'server.address': '127.0.0.1',
    'server.port': 40000,
    'client.address': '127.0.0.2',
    'client.port': 5433,
  });
  t.is(r.measurements[0]!.instrument, DB_SERVER_OPERATION_DURATION);
  t.deepEqual(r.measurements[0]!.attributes, {
    'db.system.name': 'mysql',
    'db.operation.name': 'INSERT',
    'db.response.status_code': '1062',
    'error.type': '1062',
    'server.address': '127.0.0.1',
    'server.port': 40000,
  });
  // The same values give the same frozen set; one value differing gives another.
  t.is(dbRecord('mysql', CONN, 'server', call, 0, 1, 1).measurements[0]!.attributes, dbRecord('mysql', CONN, 'server', call, 0, 2, 2).measurements[0]!.attributes);
  t.not(dbRecord('mysql', CONN, 'server', call, 0, 1, 1).measurements[0]!.attributes, dbRecord('mysql', CONN, 'server', { ...call, statusCode: '1063' }, 0, 1, 1).measurements[0]!.attributes);
});

test('span names: summary, else operation and collection, else operation, else the system; texts bounded', (t) => {
  t.is(dbSpanName({ system: 'redis', operation: 'GET' }), 'GET');
  t.is(dbSpanName({ system: 'postgresql', operation: 'DELETE', collection: 'carts' }), 'DELETE carts');
  t.is(dbSpanName({ system: 'postgresql' }), 'postgresql');
  const long = dbRecord('postgres', CONN, 'client', { system: 'postgresql', queryText: 'é'.repeat(10_000) }, 0, 1, 0);
  t.is((long.attributes['db.query.text'] as string).length, 8192);
  t.is(queryTextFor('sanitized', "SELECT 'secret'", { sanitized: 'SELECT ?' }), 'SELECT ?');
  t.is(queryTextFor('raw', "SELECT 'secret'", { sanitized: 'SELECT ?' }), "SELECT 'secret'");
  t.is(queryTextFor('off', "SELECT 'secret'", { sanitized: 'SELECT ?' }), undefined);
});

// A database protocol registered from the test tree, configured by the shared section.
const testDb: ProtocolDefinition<DbOptions> = {
  id: 'testdb',
  networkProtocolName: 'testdb',
  maxDetectBytes: 1,
  instruments: [],
  config: dbProtocolConfig('testdb', 'literals replaced by ?'),
  detect: () => ({ result: 'no' }),
  createSession: () => {
    throw new Error('not used');
  },
};
const REGISTRY = [...PROTOCOLS, testDb];

function queryText(argv: string[], env: Record<string, string>): unknown {
  return (resolveRunConfig(parseRunFlags(['--pid', '1', ...argv], REGISTRY), env, { protocols: REGISTRY }).options.protocolOptions['testdb'] as DbOptions).queryText;
}

test('query_text: sanitized by default; the file, then the variable, then the flag opt in', (t) => {
  t.is(queryText([], {}), 'sanitized');
  t.is(queryText([], { EBPF_OTEL_TESTDB_QUERY_TEXT: 'raw' }), 'raw');
  t.is(queryText(['--testdb-query-text', 'off'], { EBPF_OTEL_TESTDB_QUERY_TEXT: 'raw' }), 'off');
  t.throws(() => queryText([], { EBPF_OTEL_TESTDB_QUERY_TEXT: 'all' }), { instanceOf: UsageError, message: 'EBPF_OTEL_TESTDB_QUERY_TEXT takes sanitized, raw, off, got "all"' });
  t.throws(() => queryText(['--testdb-query-text', 'yes'], {}), { instanceOf: UsageError, message: '--testdb-query-text takes sanitized, raw, off, got "yes"' });
  const file = parseConfigFile('testdb:\n  query_text: raw\n', 'a.yaml', {}, REGISTRY);
  t.deepEqual(file.values['testdb'], { query_text: 'raw' });
  t.throws(() => parseConfigFile('testdb:\n  query_text: everything\n', 'a.yaml', {}, REGISTRY), { message: /testdb\.query_text: expected one of sanitized, raw, off/ });
  t.regex(
    settingsTable(configSchema(REGISTRY)),
    /^\| `testdb\.query_text` \| `sanitized`, `raw`, `off` \| sanitized \| `EBPF_OTEL_TESTDB_QUERY_TEXT` \| `--testdb-query-text` \| what `db\.query\.text` carries: `sanitized` \(literals replaced by \?\), `raw` \(as sent: user data leaves the host\) or `off` \|$/m,
  );
});

test('error messages: quoted runs scrubbed unless the raw text is exported, an apostrophe inside a value included', (t) => {
  t.is(errorMessageFor('sanitized', 'invalid input syntax for type integer: "secret-1"'), 'invalid input syntax for type integer: "?"');
  t.is(errorMessageFor('sanitized', "Duplicate entry 'secret-2' for key 'PRIMARY'"), "Duplicate entry '?' for key '?'");
  t.is(errorMessageFor('sanitized', "ERR unknown command 'it's secret-3', with args beginning with: "), "ERR unknown command '?', with args beginning with: ");
  t.is(errorMessageFor('sanitized', "Table 'shop.x' doesn't exist"), "Table '?' doesn't exist");
  t.is(errorMessageFor('off', "near 'secret-4' at line 1"), "near '?' at line 1");
  t.is(errorMessageFor('raw', 'invalid input syntax for type integer: "secret-1"'), 'invalid input syntax for type integer: "secret-1"');
});
