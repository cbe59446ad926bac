import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwksCache,
  type ExportedJWKSCache,
  type FlattenedJWSInput,
  type JWKSCacheInput,
  type JWSHeaderParameters,
} from 'jose';
import { RETRY_AFTER_SECONDS } from './errors.js';

/** The issuer's keys could not be fetched and no usable copy is cached. */
export class KeysUnavailableError extends Error {
  constructor() {
    super('the issuer keys are unavailable');
    this.name = 'KeysUnavailableError';
  }
}

export interface KeySetOptions {
  fetch?: typeof fetch;
  /** after a successful fetch, how long before an unknown `kid` may trigger another (ms) */
  cooldownMs: number;
  /** how long fetched keys are used before they are fetched again (ms); jose's default */
  maxAgeMs?: number;
  /** while the issuer is unreachable, keep using keys fetched at most this long ago (ms) */
  staleIfErrorMs?: number;
  /** after a failed fetch, how long to use the cached keys without trying again (ms); the 503's Retry-After */
  retryMs?: number;
}

/** Errors of the fetch itself, as opposed to "no key matches this token". */
const FETCH_FAILURES = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);
const isFetchFailure = (err: unknown) => !(err instanceof errors.JOSEError) || FETCH_FAILURES.has(err.code);

/**
 * The issuer's JWKS (RFC 7517), fetched with jose's remote key set: cached for
 * `maxAgeMs`, fetched again for an unknown `kid` once `cooldownMs` has passed.
 * If a fetch fails, the last keys fetched (within `staleIfErrorMs`) keep being
 * used, so a short issuer outage does not take the API down; without them, or
 * for a `kid` they do not have, it throws KeysUnavailableError.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2 (jwks_uri)
 */
export function createKeySet(url: URL, options: KeySetOptions) {
  const { staleIfErrorMs = 60 * 60_000, retryMs = RETRY_AFTER_SECONDS * 1000 } = options;
  const cache: Partial<ExportedJWKSCache> = {};
  const remote = createRemoteJWKSet(url, {
    cooldownDuration: options.cooldownMs,
    cacheMaxAge: options.maxAgeMs ?? 10 * 60_000,
    timeoutDuration: 5_000,
    [jwksCache]: cache as JWKSCacheInput,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
  let failedAt = -Infinity;
  let stale: { uat: number; keys: ReturnType<typeof createLocalJWKSet> } | undefined;

  async function lastGood(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    const { uat, jwks } = cache;
    if (uat === undefined || !jwks || Date.now() - uat > staleIfErrorMs) throw new KeysUnavailableError();
    if (stale?.uat !== uat) stale = { uat, keys: createLocalJWKSet(jwks) };
    try {
      return await stale.keys(header, token);
    } catch (err) {
      // An unknown kid might be a new key the issuer has and we cannot see.
      if (err instanceof errors.JWKSNoMatchingKey) throw new KeysUnavailableError();
      throw err;
    }
  }

  return async function getKey(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    if (Date.now() - failedAt < retryMs) return lastGood(header, token);
    try {
      return await remote(header, token);
    } catch (err) {
      if (!isFetchFailure(err)) throw err;
      failedAt = Date.now();
      return lastGood(header, token);
    }
  };
}
