import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import argon2 from 'argon2';
import type { RateLimiter } from '../common/rate-limit.js';

/**
 * Client secrets: generated with 256 bits of randomness, stored only as argon2id
 * hashes, and verified through a cache of *successful* verifications.
 */

/** OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): about 35 ms per verify here. */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): Promise<string> {
  return argon2.hash(secret, ARGON2_OPTIONS);
}

export function isArgon2idHash(value: string): boolean {
  // PHC string format; the parameter order varies between implementations.
  return /^\$argon2id\$v=19\$(?=[^$]*m=\d+)(?=[^$]*t=\d+)(?=[^$]*p=\d+)[mtp=\d,]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(value);
}

/** argon2.verify, but false instead of a throw for a malformed hash. */
export async function verifySecret(hash: string, secret: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, secret);
  } catch {
    return false;
  }
}

/** Thrown when too many argon2 verifications are already running or waiting in this process. */
export class VerifierBusyError extends Error {
  /** seconds: the queue drains within about that */
  readonly retryAfterSeconds = 1;
  constructor() {
    super('too many client secret verifications in progress');
    this.name = 'VerifierBusyError';
  }
}

/** Thrown when a client (from an address, or overall) failed too often: no argon2 runs. */
export class SecretAttemptsLimitedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('too many failed client authentications; try again later');
    this.name = 'SecretAttemptsLimitedError';
  }
}

export interface VerifierLimits {
  /** argon2 verifications at once in this process (libuv's thread pool has 4 threads) */
  concurrency: number;
  /** verifications allowed to wait; beyond that callers fail fast */
  queue: number;
}

const DEFAULT_LIMITS: VerifierLimits = { concurrency: 4, queue: 64 };

/**
 * Where failed verifications are counted: per client and source address, and
 * per client overall (a higher ceiling, against guesses from many addresses).
 */
/** What happened to a check, for whoever counts them (metrics). */
export type SecretCheckResult = 'cache_hit' | 'argon2_ok' | 'argon2_fail' | 'limited' | 'busy';

export interface FailureLimits {
  perClientAndAddress: RateLimiter;
  perClient: RateLimiter;
}

interface Entry {
  /** the stored hash the secret was verified against */
  hash: string;
  /** HMAC of the secret under this process's random key */
  mac: Buffer;
}

/**
 * What one shared verification came to: the secret is right, wrong, or the
 * request that started it was over its failure limit (at `source`), so argon2
 * did not run.
 */
type Outcome = { kind: 'ok' } | { kind: 'bad'; overCeiling?: SecretAttemptsLimitedError } | { kind: 'limited'; source: string; error: SecretAttemptsLimitedError };

/**
 * Verifies a presented secret against a stored argon2id hash, remembering the
 * last success per client as a keyed digest (random per-process key) of the secret.
 * An entry only counts while the stored hash is unchanged, so a rotated secret
 * is never accepted from the cache. Failures are never cached.
 *
 * A failure limit never refuses the right secret for failures it has not had:
 * concurrent verifications of one (client, hash, secret) share one argon2 run,
 * and only the request that starts it reserves a failure ahead of argon2 (so
 * a burst of different wrong secrets runs no more checks than the limit allows).
 * The others count a failure only when the shared run found the secret wrong.
 */
export class SecretVerifier {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  /** concurrent first verifications of the same secret share one argon2 run */
  readonly #pending = new Map<string, Promise<Outcome>>();
  readonly #limits: VerifierLimits;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #failures: FailureLimits | undefined;
  readonly #observe: (result: SecretCheckResult) => void;

  constructor(
    private readonly maxEntries = 10_000,
    limits: Partial<VerifierLimits> = {},
    /** where failures are counted; without it they are not limited (the CLI's own use) */
    failures?: FailureLimits,
    observe: (result: SecretCheckResult) => void = () => {},
  ) {
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#failures = failures;
    this.#observe = observe;
  }

  /** argon2 verifications running or waiting in this process */
  get inFlight(): number {
    return this.#running + this.#waiting.length;
  }

  /**
   * A per-process keyed digest of the secret: SHA-256 over a random 32-byte key
   * and the secret. It is only compared, never shown, so length extension does
   * not matter, and a one-shot hash costs a third of an HMAC on this hot path.
   */
  #mac(secret: string): Buffer {
    return createHash('sha256').update(this.#key).update(secret).digest();
  }

  /**
   * True when `secret` matches the stored hash. A cache hit costs one digest
   * and nothing else. A miss joins the verification of the same secret already
   * running, or starts one, which first reserves a failure for the client at
   * `source` (the caller's address) and gives it back when the secret was right.
   * Throws SecretAttemptsLimitedError when the client used up its failures at
   * `source` (a request that shared a wrong secret's run counts one too), or
   * when a wrong secret finds the client over its ceiling over all addresses
   * (a right one never does), and VerifierBusyError when the argon2 queue is full.
   */
  verify(clientId: string, hash: string, secret: string, source?: string): Promise<boolean> {
    return this.#verify(clientId, hash, secret, source, true);
  }

  async #verify(clientId: string, hash: string, secret: string, source: string | undefined, mayRetry: boolean): Promise<boolean> {
    const mac = this.#mac(secret);
    const entry = this.#entries.get(clientId);
    if (entry && entry.hash === hash && timingSafeEqual(entry.mac, mac)) {
      this.#observe('cache_hit');
      return true;
    }
    const key = `${clientId}\0${hash}\0${mac.toString('base64')}`;
    const shared = this.#pending.get(key);
    let outcome: Outcome;
    try {
      outcome = await (shared ?? this.#start(key, clientId, hash, secret, mac, source));
    } catch (err) {
      if (err instanceof VerifierBusyError) this.#observe('busy');
      throw err;
    }
    if (outcome.kind === 'limited') {
      // the request that started the run was over its limit: that says nothing
      // about this one (another address), which tries once on its own
      if (shared && mayRetry && outcome.source !== source) return this.#verify(clientId, hash, secret, source, false);
      if (shared) this.#observe('limited');
      throw outcome.error;
    }
    this.#observe(outcome.kind === 'ok' ? 'argon2_ok' : 'argon2_fail');
    if (outcome.kind === 'ok') return true;
    // the run's own failure is already counted; every request that shared a wrong secret's run counts one
    if (shared && source !== undefined && this.#failures) await this.#countFailure(this.#failures, clientId, source);
    if (!shared && outcome.overCeiling) throw outcome.overCeiling;
    return false;
  }

  /**
   * Starts the one verification of this (client, hash, secret): reserves a
   * failure, runs argon2, and on success remembers the secret *before* the run
   * ends, so a request arriving at any moment finds either the run or the entry.
   */
  #start(key: string, clientId: string, hash: string, secret: string, mac: Buffer, source: string | undefined): Promise<Outcome> {
    const failures = this.#failures;
    const run = (async (): Promise<Outcome> => {
      let reserved: { refund(): Promise<void> } | undefined;
      if (source !== undefined && failures) {
        try {
          reserved = await this.#reserve(failures, clientId, source);
        } catch (err) {
          if (err instanceof SecretAttemptsLimitedError) return { kind: 'limited', source, error: err };
          throw err;
        }
      }
      let ok: boolean;
      try {
        ok = await this.#limited(() => verifySecret(hash, secret));
      } catch (err) {
        await reserved?.refund();
        throw err;
      }
      // only a wrong secret keeps its reservation, and counts towards the client's ceiling
      if (!ok) return { kind: 'bad', overCeiling: source !== undefined && failures ? await this.#overCeiling(failures, clientId) : undefined };
      this.#remember(clientId, { hash, mac });
      await reserved?.refund();
      return { kind: 'ok' };
    })().finally(() => {
      if (this.#pending.get(key) === run) this.#pending.delete(key);
    });
    this.#pending.set(key, run);
    return run;
  }

  /**
   * Counts a failure of the client at `source` ahead of argon2; throws when
   * that address is over its limit. Only the address's own failures refuse it
   * before argon2: the client's ceiling over all addresses (#overCeiling) is
   * counted after a wrong secret, so failures elsewhere never lock out an
   * address with the right secret.
   */
  async #reserve(failures: FailureLimits, clientId: string, source: string): Promise<{ refund(): Promise<void> }> {
    const pair = `${clientId}|${source}`;
    const wait = await failures.perClientAndAddress.hit(pair);
    if (wait) {
      this.#observe('limited');
      throw new SecretAttemptsLimitedError(wait);
    }
    return { refund: () => failures.perClientAndAddress.refund(pair) };
  }

  /** Counts a wrong secret towards the client's ceiling over all addresses: the refusal to give when it is over. */
  async #overCeiling(failures: FailureLimits, clientId: string): Promise<SecretAttemptsLimitedError | undefined> {
    const wait = await failures.perClient.hit(clientId);
    if (!wait) return undefined;
    this.#observe('limited');
    return new SecretAttemptsLimitedError(wait);
  }

  /** Counts one failure of a request that shared a wrong secret's run; throws when over a limit. */
  async #countFailure(failures: FailureLimits, clientId: string, source: string): Promise<void> {
    await this.#reserve(failures, clientId, source);
    const over = await this.#overCeiling(failures, clientId);
    if (over) throw over;
  }

  async #limited<T>(run: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limits.concurrency) {
      if (this.#waiting.length >= this.#limits.queue) throw new VerifierBusyError();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running += 1;
    try {
      return await run();
    } finally {
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }

  #remember(clientId: string, entry: Entry): void {
    this.#entries.delete(clientId);
    if (this.#entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the least recently verified client.
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(clientId, entry);
  }

  get size(): number {
    return this.#entries.size;
  }
}
