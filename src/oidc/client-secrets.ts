import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import argon2 from 'argon2';

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

interface Entry {
  /** the stored hash the secret was verified against */
  hash: string;
  /** HMAC of the secret under this process's random key */
  mac: Buffer;
}

/**
 * Verifies a presented secret against a stored argon2id hash, remembering the
 * last success per client as an HMAC (random per-process key) of the secret.
 * An entry only counts while the stored hash is unchanged, so a rotated secret
 * is never accepted from the cache. Failures are never cached.
 */
export class SecretVerifier {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  /** concurrent first verifications of the same secret share one argon2 run */
  readonly #pending = new Map<string, Promise<boolean>>();

  constructor(private readonly maxEntries = 10_000) {}

  #mac(secret: string): Buffer {
    return createHmac('sha256', this.#key).update(secret).digest();
  }

  async verify(clientId: string, hash: string, secret: string): Promise<boolean> {
    const mac = this.#mac(secret);
    const entry = this.#entries.get(clientId);
    if (entry && entry.hash === hash && timingSafeEqual(entry.mac, mac)) return true;

    const pendingKey = `${clientId}\0${hash}\0${mac.toString('base64')}`;
    let pending = this.#pending.get(pendingKey);
    if (!pending) {
      pending = verifySecret(hash, secret).finally(() => this.#pending.delete(pendingKey));
      this.#pending.set(pendingKey, pending);
    }
    const ok = await pending;
    if (ok) this.#remember(clientId, { hash, mac });
    return ok;
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
