import type { Middleware } from 'koa';
import { verifyAccessToken, type AccessTokenClaims } from './access-token.js';
import { readAuthorization } from './authorization.js';
import { verifyDpopProof } from './dpop.js';
import { ResourceError, insufficientScope, invalidToken, missingToken, respond } from './errors.js';
import { createKeySet } from './key-set.js';
import { ReplayCache, type ReplayStore } from './replay-cache.js';
import { introspector, type IntrospectionOptions } from './introspection.js';
import { protectedResourceMetadataUrl } from './metadata.js';

export type { AccessTokenClaims } from './access-token.js';
export type { ResourceErrorCode, Scheme } from './errors.js';
export { ReplayCache, redisReplayStore, type RedisSetNx, type ReplayStore } from './replay-cache.js';
export type { IntrospectionOptions } from './introspection.js';
export {
  PROTECTED_RESOURCE_WELL_KNOWN,
  protectedResourceMetadata,
  protectedResourceMetadataDocument,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
} from './metadata.js';

export interface RequireTokenOptions {
  /** Gatehouse's issuer URL, exactly as in the tokens' `iss` */
  issuer: string;
  /** this API's identifier (its RFC 8707 resource indicator); tokens must have it in `aud` */
  audience: string;
  /** scopes the token must all have */
  scopes?: string[];
  /** where the signing keys are; default `${issuer}/jwks` */
  jwksUri?: string;
  /** leeway for `exp`, `nbf` and DPoP `iat` (seconds); default 5 */
  clockToleranceSeconds?: number;
  /**
   * After fetching the JWKS, how long before a token with an unknown `kid` may
   * make the kit fetch it again (seconds); default 30.
   */
  jwksCooldownSeconds?: number;
  /** the clock for token and proof times (ms since the epoch); for tests */
  now?: () => number;
  /** the fetch used for the JWKS; for tests and custom agents */
  fetch?: typeof fetch;
  /**
   * The URL of this API's protected-resource metadata, sent as `resource_metadata`
   * in every challenge (RFC 9728 §5.1). Default: the well-known URL of `audience`
   * (`protectedResourceMetadataUrl(audience)`, none for a non-http(s) audience);
   * false leaves the parameter out.
   */
  resourceMetadataUrl?: string | false;
  /**
   * Where used DPoP proof `jti`s are remembered. Default: in memory, per
   * process. An API with several processes must share one (`redisReplayStore`),
   * or a proof used on one is accepted again on another.
   */
  replayStore?: ReplayStore;
  /**
   * Also ask Gatehouse's introspection endpoint (RFC 7662) about every token
   * that passed the local checks, and refuse one that is no longer active
   * (revoked, its grant or account ended). Costs a request to Gatehouse per
   * request; without it, a revoked token works until it expires.
   */
  introspection?: IntrospectionOptions;
}

/** What a request that passed `requireToken` carries in `ctx.state.auth`. */
export interface TokenAuth {
  /** the access token as presented */
  token: string;
  claims: AccessTokenClaims;
  /** the token's `scope`, split */
  scopes: string[];
  /** `client_id`: the client the token was issued to */
  clientId: string;
  /** `sub`: the person, or the client itself for client_credentials */
  subject: string;
}

export interface AuthState {
  auth: TokenAuth;
}

/**
 * Koa middleware that lets a request through only with a valid Gatehouse JWT
 * access token for `audience` that has every scope in `scopes`. DPoP-bound
 * tokens (`cnf.jkt`) need the DPoP scheme and a valid proof. On success
 * `ctx.state.auth` holds the token and its claims; on failure the response is
 * an RFC 6750 / RFC 9449 error (400, 401, 403) whose challenge names the
 * API's protected-resource metadata (RFC 9728 §5.1), or 503 with Retry-After
 * when the issuer's keys cannot be fetched.
 * @see https://www.rfc-editor.org/rfc/rfc6750 (Bearer tokens)
 * @see https://www.rfc-editor.org/rfc/rfc9068 (JWT access tokens)
 * @see https://www.rfc-editor.org/rfc/rfc9449 (DPoP)
 * @see https://www.rfc-editor.org/rfc/rfc9728 (protected-resource metadata)
 */
export function requireToken(options: RequireTokenOptions): Middleware<AuthState> {
  const { issuer, audience } = options;
  if (!issuer || !audience) throw new TypeError('requireToken: issuer and audience are required');
  const required = options.scopes ?? [];
  const clockToleranceSeconds = options.clockToleranceSeconds ?? 5;
  const now = options.now ?? Date.now;
  const keys = createKeySet(new URL(options.jwksUri ?? `${issuer.replace(/\/+$/, '')}/jwks`), {
    fetch: options.fetch,
    cooldownMs: (options.jwksCooldownSeconds ?? 30) * 1000,
  });
  const replay = options.replayStore ?? new ReplayCache();
  const stillActive = options.introspection ? introspector(issuer, options.introspection, options.fetch) : undefined;
  const resourceMetadata = options.resourceMetadataUrl === false ? undefined : (options.resourceMetadataUrl ?? protectedResourceMetadataUrl(audience));

  return async function requireTokenMiddleware(ctx, next) {
    let auth: TokenAuth;
    try {
      const credential = readAuthorization(ctx.get('Authorization') || undefined);
      if (!credential) throw missingToken();
      const { scheme, token } = credential;
      const currentDate = new Date(now());
      const claims = await verifyAccessToken(token, keys, { issuer, audience, clockToleranceSeconds, currentDate }, scheme);
      const jkt = claims.cnf?.jkt;
      if (jkt) {
        // RFC 9449 §7.2: a bound token is worthless without its proof, so never as Bearer.
        if (scheme !== 'DPoP') throw invalidToken('this access token is DPoP-bound: use the DPoP scheme with a proof', 'DPoP');
        await verifyDpopProof({
          proof: ctx.get('DPoP') || undefined,
          method: ctx.method,
          url: `${ctx.protocol}://${ctx.host}${ctx.path}`,
          accessToken: token,
          jkt,
          currentDate,
          clockToleranceSeconds,
          replay,
        });
      } else if (scheme === 'DPoP') {
        throw invalidToken('this access token is not DPoP-bound: use the Bearer scheme', 'Bearer');
      }
      const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
      if (!required.every((s) => scopes.includes(s))) throw insufficientScope(required, scheme);
      if (stillActive && !(await stillActive(token))) throw invalidToken('the access token is no longer active', scheme);
      auth = { token, claims, scopes, clientId: claims.client_id, subject: claims.sub };
    } catch (err) {
      if (err instanceof ResourceError) return respond(ctx, err, audience, resourceMetadata);
      throw err;
    }
    ctx.state.auth = auth;
    await next();
  };
}
