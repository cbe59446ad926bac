import { createHash } from 'node:crypto';

/**
 * Where used DPoP proof identifiers are remembered until the proofs are too old
 * to be accepted anyway. `use` records `key` until `expiresAt` (ms since the
 * epoch) and says whether it was new: false is a replay. It must be atomic
 * across everything that shares the store.
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export interface ReplayStore {
  use(key: string, expiresAt: number, now: number): boolean | Promise<boolean>;
}

/** Keys of fixed size, whatever the proof's jti. */
const digest = (id: string) => createHash('sha256').update(id).digest('base64url');

/**
 * The default store: in memory, per process. An API that runs several
 * processes (node:cluster, replicas) must share one instead, or a proof used on
 * one process is accepted again on another: see `redisReplayStore`.
 */
export class ReplayCache implements ReplayStore {
  readonly #seen = new Map<string, number>();

  constructor(readonly maxEntries = 100_000) {}

  /**
   * Records `id` until `expiresAt` (ms). Returns false if it is already recorded
   * and not expired: a replay. Entries are fixed-size hashes.
   */
  use(id: string, expiresAt: number, now: number): boolean {
    const key = digest(id);
    const seen = this.#seen.get(key);
    if (seen !== undefined && seen > now) return false;
    this.#seen.delete(key);
    if (this.#seen.size >= this.maxEntries) this.#prune(now);
    this.#seen.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Drops expired entries; if still full, the oldest ones, down to 90 %. */
  #prune(now: number): void {
    for (const [key, expiresAt] of this.#seen) if (expiresAt <= now) this.#seen.delete(key);
    let excess = this.#seen.size - Math.floor(this.maxEntries * 0.9);
    for (const key of this.#seen.keys()) {
      if (excess-- <= 0) break;
      this.#seen.delete(key);
    }
  }
}

/** The one command of a Redis client this store needs, as ioredis spells it. */
export interface RedisSetNx {
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<unknown>;
}

/**
 * A replay store shared by every process of an API, on Redis: one
 * `SET key 1 PX <ms> NX` per proof, atomic on the server. Pass an ioredis
 * client (or anything with its `set` signature).
 */
export function redisReplayStore(redis: RedisSetNx, prefix = 'gatehouse:dpop:'): ReplayStore {
  return {
    async use(id, expiresAt, now) {
      const answer = await redis.set(`${prefix}${digest(id)}`, '1', 'PX', Math.max(1, Math.ceil(expiresAt - now)), 'NX');
      return answer === 'OK';
    },
  };
}
