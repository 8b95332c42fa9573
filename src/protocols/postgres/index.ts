// PostgreSQL frontend/backend protocol 3.x: detection, sessions and
// database records. See README.md.

import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { dbProtocolConfig } from '../db/config';
import { DB_INSTRUMENTS } from '../db/semantics';
import { PG_COUNTERS } from './counters';
import { detectPostgres } from './detect';
import { PgSession, type PgOptions } from './session';

/**
 * Bytes detection looks at: a StartupMessage is at most 10000 bytes; joined
 * mid-stream, a syscall's bytes must be whole messages (detect.ts), so
 * detection sees whole syscalls of a usual size.
 */
export const PG_MAX_DETECT_BYTES = 64 * 1024;

export const postgresProtocol: ProtocolDefinition<PgOptions> = {
  id: 'postgres',
  networkProtocolName: 'postgresql',
  maxDetectBytes: PG_MAX_DETECT_BYTES,
  counters: PG_COUNTERS,
  instruments: DB_INSTRUMENTS,
  config: dbProtocolConfig('postgres', 'literals replaced by `?`'),
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
    return detectPostgres(side, data, conn);
  },
  createSession(conn: ConnectionInfo, requestSide: Side, options: PgOptions, observer?: SessionObserver): ProtocolSession {
    return new PgSession(conn, requestSide, options, observer);
  },
};

export type { PgOptions } from './session';
