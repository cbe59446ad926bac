import { errors, type Configuration, type KoaContextWithOIDC, type default as Provider } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import type { Middleware } from 'koa';
import type { Catalog } from '../storage/catalog.js';
import type { SecretVerifier } from './client-secrets.js';
import { isArgon2idHash } from './client-secrets.js';

/**
 * Dynamic client registration (RFC 7591) and management (RFC 7592), done by
 * oidc-provider. What Gatehouse adds: initial access tokens with a
 * "single-use" policy, per-IP and per-token rate limits, and keeping client
 * secrets hashed (registered clients are stored by ClientAdapter.upsert).
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#featuresregistration
 */

export type RegistrationMode = 'off' | 'initial-access-token' | 'open';

export const SINGLE_USE = 'single-use';
const CONSUMED = 'gatehouseConsumedInitialAccessToken';

/**
 * A single-use token is consumed before the metadata is validated (policies run
 * first), so a registration that then fails gives the token back: a typo does
 * not burn it.
 */
export function releaseOnFailure(provider: Provider, db: Db): void {
  provider.on('registration_create.error', (ctx: { state?: Record<string, unknown> }) => {
    const jti = ctx.state?.[CONSUMED];
    if (typeof jti !== 'string') return;
    void db.oidcPayload.updateMany({ where: { type: 'InitialAccessToken', id: jti }, data: { consumedAt: null } }).catch(() => {});
  });
}

export function registrationFeatures(mode: RegistrationMode): Pick<NonNullable<Configuration['features']>, 'registration' | 'registrationManagement'> {
  if (mode === 'off') return { registration: { enabled: false }, registrationManagement: { enabled: false } };
  if (mode === 'open') {
    return { registration: { enabled: true, initialAccessToken: false }, registrationManagement: { enabled: true, rotateRegistrationAccessToken: true } };
  }
  return {
    registration: {
      enabled: true,
      initialAccessToken: true,
      // policies exist only with stored initial access tokens
      policies: {
        /**
         * Consumes the initial access token atomically (the adapter's consume
         * lets exactly one caller win), so two racing registrations cannot both use it.
         */
        async [SINGLE_USE](ctx: KoaContextWithOIDC) {
          const iat = ctx.oidc.entities.InitialAccessToken;
          if (!iat) return; // a later update through the registration access token
          // InitialAccessToken is not a consumable model, so the adapter's atomic consume is called directly
          const { adapter } = ctx.oidc.provider.InitialAccessToken as unknown as { adapter: { consume(id: string): Promise<void> } };
          try {
            await adapter.consume(iat.jti);
          } catch {
            throw new errors.InvalidToken('initial access token already used');
          }
          // released again if this registration fails (see releaseOnFailure)
          ctx.state[CONSUMED] = iat.jti;
        },
      },
    },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
  };
}

/** A fixed-window counter per key: `limit` hits per `windowMs`. */
class RateLimiter {
  readonly #hits = new Map<string, { count: number; resetAt: number }>();
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** seconds until the key may try again, or 0 when this hit is allowed */
  hit(key: string): number {
    const now = this.now();
    let entry = this.#hits.get(key);
    if (!entry || entry.resetAt <= now) {
      if (this.#hits.size > 10_000) this.#hits.clear();
      entry = { count: 0, resetAt: now + this.windowMs };
      this.#hits.set(key, entry);
    }
    entry.count += 1;
    return entry.count > this.limit ? Math.ceil((entry.resetAt - now) / 1000) : 0;
  }
}

/**
 * Koa middleware in front of oidc-provider's /reg routes:
 * - POST /reg is rate-limited per client IP and per initial access token;
 * - PUT /reg/:id: a client_secret the app sends is checked against the stored
 *   hash and, if it matches, handed to oidc-provider as the stored value, which
 *   is what oidc-provider compares it with;
 * - responses never carry the stored hash (RFC 7592 reads and updates).
 */
export function registrationGuard(options: {
  catalog: Catalog;
  db: Db;
  verifier: SecretVerifier;
  /** requests per minute, per IP and per token */
  limit: number;
  now?: () => number;
}): Middleware {
  const now = options.now ?? Date.now;
  const perIp = new RateLimiter(options.limit, 60_000, now);
  const perToken = new RateLimiter(options.limit, 60_000, now);
  return async (ctx, next) => {
    // every request passes here: one regexp test before anything else
    if (!/^\/reg/i.test(ctx.path)) return next();
    // oidc-provider's router ignores case and a trailing slash: so must the guard
    const path = ctx.path.toLowerCase().replace(/\/+$/, '');

    if (ctx.method === 'POST' && path === '/reg') {
      const token = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
      const wait = Math.max(perIp.hit(ctx.ip), token ? perToken.hit(token) : 0);
      if (wait) {
        ctx.status = 429;
        ctx.set('Retry-After', String(wait));
        ctx.body = { error: 'too_many_requests', error_description: 'too many registration requests; try again later' };
        return;
      }
    }

    const rawId = /^\/reg\/([^/]+)\/*$/i.exec(ctx.path)?.[1];
    const writes = (ctx.method === 'POST' && path === '/reg') || (ctx.method === 'PUT' && rawId !== undefined);
    if (writes && ctx.is('application/json')) {
      const invalid = (description: string, error = 'invalid_request') => {
        ctx.status = 400;
        ctx.body = { error, error_description: description };
      };
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of ctx.req) {
        size += (chunk as Buffer).length;
        // oidc-provider's own limit, in bytes
        if (size > 56 * 1024) return invalid('request entity too large');
        chunks.push(chunk as Buffer);
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return invalid('failed to parse the request body');
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) return invalid('the request body must be a JSON object');
      // oidc-provider would fetch it from the server (SSRF); Gatehouse only uses public subjects
      if (body.sector_identifier_uri !== undefined) return invalid('sector_identifier_uri is not supported', 'invalid_client_metadata');

      if (rawId !== undefined) {
        let clientId: string;
        try {
          clientId = decodeURIComponent(rawId);
        } catch {
          return invalid('malformed client_id in the path');
        }
        const stored = await options.catalog.client(clientId);
        // argon2 only for callers holding this client's registration access token
        const rat = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
        const authorized = rat === undefined ? undefined : ((await options.db.oidcPayload.findFirst({
          where: { type: 'RegistrationAccessToken', id: rat },
          select: { payload: true },
        }))?.payload as { clientId?: string } | undefined);
        if (typeof body.client_secret === 'string' && stored?.secretHash && authorized?.clientId === clientId
          && (await options.verifier.verify(stored.clientId, stored.secretHash, body.client_secret, ctx.ip))) {
          body.client_secret = stored.secretHash;
        }
      }
      // oidc-provider reads an already parsed body from here
      (ctx.request as unknown as { body: unknown }).body = body;
    }

    await next();

    const out = ctx.body as Record<string, unknown> | undefined;
    if (out && typeof out === 'object' && !Buffer.isBuffer(out)) {
      if (typeof out.client_secret === 'string' && isArgon2idHash(out.client_secret)) delete out.client_secret;
      // Gatehouse's own metadata (first party, APIs) is the admin's business
      for (const key of Object.keys(out)) if (key.startsWith('gatehouse_')) delete out[key];
    }
  };
}
