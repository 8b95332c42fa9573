// The `redis` section: what db.query.text carries (src/protocols/db/config.ts).

import { dbProtocolConfig } from '../db/config';

export const REDIS_CONFIG = dbProtocolConfig('redis', 'the command name and its key arguments, every other argument `?`');
