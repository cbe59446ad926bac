import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

// Loaded when REDIS_URL is set, not with the server: ioredis (about 40 modules)
// costs every start of a server without Redis some 50 ms otherwise.
const require = createRequire(import.meta.url);

/**
 * The Redis connection shared limits use. Commands fail at once while it is
 * down (no offline queue), so the limiters fall back to per-process counting;
 * the outage and the recovery are each logged once.
 */
export interface RedisLink {
  client: Redis;
  /** true while connected */
  readonly up: boolean;
  close(): Promise<void>;
}

export function connectRedis(url: string, logger: Logger): RedisLink {
  const { Redis } = require('ioredis') as typeof import('ioredis');
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // ms between reconnection attempts, growing to 2 s
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    lazyConnect: false,
  });
  let up = false;
  let everUp = false;
  client.on('ready', () => {
    if (!up) logger.info(everUp ? 'redis is back: limits are shared again' : 'connected to redis: limits are shared');
    up = true;
    everUp = true;
  });
  const down = (err?: Error) => {
    if (up || !everUp) logger.warn({ err: err && { name: err.name, message: err.message } }, 'redis is unavailable: limits are counted per process until it returns');
    up = false;
    everUp = true;
  };
  client.on('close', () => down());
  client.on('error', (err: Error) => {
    if (up) down(err);
  });
  return {
    client,
    get up() {
      return up;
    },
    async close() {
      client.disconnect();
    },
  };
}
