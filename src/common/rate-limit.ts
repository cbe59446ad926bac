/**
 * The one rate-limit seam. Registration limits and the failed-secret counters
 * use it; src/limits/ provides it (in process, across node:cluster workers, or
 * in Redis across instances). Asynchronous, so a shared store can stand behind it.
 */
export interface RateLimiter {
  /** Counts one event for `key`: seconds until the key may try again when this one is over the limit, else 0. */
  hit(key: string): Promise<number>;
  /** Takes back one counted event (a reservation that turned out fine). */
  refund(key: string): Promise<void>;
}
