/**
 * The one rate-limit mechanism: a count of events per key in fixed windows.
 * Registration limits and the failed-secret counter both use it. Callers see
 * only the `RateLimiter` interface (asynchronous, so a shared store can stand
 * behind it); this in-process implementation is the default.
 */
export interface RateLimiter {
  /** Counts one event for `key`: seconds until the key may try again, or 0 while within the limit. */
  hit(key: string): Promise<number>;
  /** Without counting: seconds until `key` may try again once it used up its limit, else 0. */
  check(key: string): Promise<number>;
}

export interface FixedWindowOptions {
  /** events allowed per key and window */
  limit: number;
  /** ms */
  windowMs: number;
  /** ms since the epoch */
  now?: () => number;
  /** keys remembered at most; beyond that the oldest windows are dropped */
  maxKeys?: number;
}

export class FixedWindowLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;

  constructor({ limit, windowMs, now = Date.now, maxKeys = 10_000 }: FixedWindowOptions) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
    this.#maxKeys = maxKeys;
  }

  async hit(key: string): Promise<number> {
    const now = this.#now();
    let window = this.#windows.get(key);
    if (!window || window.resetAt <= now) {
      this.#windows.delete(key);
      if (this.#windows.size >= this.#maxKeys) {
        // Maps iterate in insertion order: drop the oldest window.
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
      window = { count: 0, resetAt: now + this.#windowMs };
      this.#windows.set(key, window);
    }
    window.count += 1;
    return window.count > this.#limit ? this.#wait(window.resetAt, now) : 0;
  }

  async check(key: string): Promise<number> {
    const now = this.#now();
    const window = this.#windows.get(key);
    return window && window.resetAt > now && window.count >= this.#limit ? this.#wait(window.resetAt, now) : 0;
  }

  /** whole seconds, at least 1 */
  #wait(resetAt: number, now: number): number {
    return Math.max(1, Math.ceil((resetAt - now) / 1000));
  }
}
