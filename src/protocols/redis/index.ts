// Redis (RESP2 and RESP3): detection, sessions and database records. See README.md.

import { DB_INSTRUMENTS, type DbOptions } from '../db/semantics';
import type { ConnectionInfo, Detection, ProtocolDefinition, ProtocolSession, SessionObserver, Side } from '../types';
import { REDIS_CONFIG } from './config';
import { REDIS_COUNTERS } from './counters';
import { detectRedis, REDIS_MAX_DETECT_BYTES } from './detect';
import { RedisSession } from './session';

export const redisProtocol: ProtocolDefinition<DbOptions> = {
  id: 'redis',
  networkProtocolName: 'redis',
  maxDetectBytes: REDIS_MAX_DETECT_BYTES,
  counters: REDIS_COUNTERS,
  instruments: DB_INSTRUMENTS,
  config: REDIS_CONFIG,
  detect(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
    return detectRedis(side, data, conn);
  },
  createSession(conn: ConnectionInfo, requestSide: Side, options: DbOptions, observer?: SessionObserver): ProtocolSession {
    return new RedisSession(conn, requestSide, options, observer);
  },
};
