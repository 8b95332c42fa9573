// MySQL and MariaDB client/server protocol: detection, sessions and database
// records. See README.md.

import { DB_INSTRUMENTS, type DbOptions } from '../db/semantics';
import { dbProtocolConfig } from '../db/config';
import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { MYSQL_COUNTERS } from './counters';
import { MYSQL_DETECT_BYTES, detectMysql } from './detect';
import { MysqlSession } from './session';

export const mysqlProtocol: ProtocolDefinition<DbOptions> = {
  id: 'mysql',
  networkProtocolName: 'mysql',
  maxDetectBytes: MYSQL_DETECT_BYTES,
  counters: MYSQL_COUNTERS,
  instruments: DB_INSTRUMENTS,
  config: dbProtocolConfig('mysql', 'literals replaced by `?`'),
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
    return detectMysql(side, data, conn);
  },
  createSession(conn: ConnectionInfo, requestSide: Side, options: DbOptions, observer?: SessionObserver): ProtocolSession {
    return new MysqlSession(conn, requestSide, options, observer);
  },
};
