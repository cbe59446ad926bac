import { createHash } from 'node:crypto';

/**
 * Remembers DPoP proof identifiers until the proofs they belong to are too old
 * to be accepted anyway. In memory and per process: several instances of an API
 * each keep their own.
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();

  constructor(readonly maxEntries = 100_000) {}

  /**
   * Records `id` until `expiresAt` (ms). Returns false if it is already recorded
   * and not expired: a replay. Entries are fixed-size hashes.
   */
  use(id: string, expiresAt: number, now: number): boolean {
    const key = createHash('sha256').update(id).digest('base64url');
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
