import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { RateLimiterCluster, RateLimiterClusterMaster, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimiter } from '../common/rate-limit.js';
import { connectRedis, type RedisLink } from './redis.js';

/**
 * Where rate limits are counted, on rate-limiter-flexible:
 * - REDIS_URL set: in Redis, shared by every worker of every instance; while
 *   Redis is down, each process counts on its own (the insurance limiter);
 * - several workers, no Redis: in the node:cluster primary, shared by the
 *   workers of this instance;
 * - otherwise in this process.
 * @see https://github.com/animir/node-rate-limiter-flexible/wiki
 */

export type LimitsMode = 'redis' | 'cluster' | 'process';

export interface Limits {
  mode: LimitsMode;
  /** a limiter of `points` events per key and `durationSeconds` window */
  limiter(name: string, points: number, durationSeconds: number): RateLimiter;
  /** what /readyz reports */
  status(): { mode: LimitsMode; redis?: 'up' | 'down' };
  close(): Promise<void>;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** rate-limiter-flexible behind the RateLimiter seam; a store failure counts in `fallback` instead. */
class FlexibleLimiter implements RateLimiter {
  constructor(
    private readonly store: RateLimiterAbstract,
    private readonly fallback: RateLimiterAbstract,
    private readonly logger: Logger,
  ) {}

  async hit(key: string): Promise<number> {
    try {
      await this.store.consume(key);
      return 0;
    } catch (res) {
      if (res instanceof RateLimiterRes) return seconds(res.msBeforeNext);
      // the store did not answer (the cluster primary is busy or gone): count here
      return this.fallback.consume(key).then(() => 0, (r: unknown) => (r instanceof RateLimiterRes ? seconds(r.msBeforeNext) : 0));
    }
  }

  async refund(key: string): Promise<void> {
    try {
      await this.store.reward(key, 1);
    } catch (err) {
      // at worst the key keeps one event it should not: a limit one step early
      this.logger.debug({ err }, 'could not refund a rate-limit event');
    }
  }
}

export function createLimits(options: { redisUrl?: string; workers: number; logger: Logger }): Limits {
  const { logger } = options;
  const redis: RedisLink | undefined = options.redisUrl ? connectRedis(options.redisUrl, logger) : undefined;
  const mode: LimitsMode = redis ? 'redis' : cluster.isWorker && options.workers > 1 ? 'cluster' : 'process';
  return {
    mode,
    limiter(name, points, durationSeconds) {
      const memory = () => new RateLimiterMemory({ keyPrefix: name, points, duration: durationSeconds });
      const store = redis
        ? new RateLimiterRedis({ storeClient: redis.client, keyPrefix: `gatehouse:${name}`, points, duration: durationSeconds, insuranceLimiter: memory() })
        : mode === 'cluster'
          ? new RateLimiterCluster({ keyPrefix: name, points, duration: durationSeconds, timeoutMs: 1_000 })
          : memory();
      return new FlexibleLimiter(store, memory(), logger);
    },
    status: () => (redis ? { mode, redis: redis.up ? 'up' : 'down' } : { mode }),
    close: async () => redis?.close(),
  };
}

/** In the node:cluster primary: the counter the workers' cluster limiters share (when there is no Redis). */
export function serveClusterLimits(): void {
  new RateLimiterClusterMaster();
}
