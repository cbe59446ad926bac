import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Middleware } from 'koa';
import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import type { PayloadStore } from '../storage/oidc-payloads.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { CODE_CLAIM, jwtAccessTokenStands, personOf, revokeJwtAccessToken } from '../services/access-tokens.js';
import { codeClaim } from './code-reuse.js';
import { SIGNING_ALGS } from '../common/protocol.js';
import { adminApiOf } from '../services/apis.js';
import { CREDENTIAL_CLAIM, credentialVersion } from '../services/admin-access.js';
import { publicJwk } from '../common/jwk.js';
import { introspectionPolicy } from './introspection.js';

/**
 * RFC 7009 revocation and RFC 7662 introspection of JWT access tokens.
 * oidc-provider refuses both for structured tokens (400 unsupported_token_type,
 * after it authenticated the client); this middleware answers instead:
 * - revocation: a token issued to the asking client is recorded as revoked
 *   until it expires, and its grant ends (services/access-tokens.ts); any
 *   other token is ignored, with the same empty 200 (RFC 7009 §2.2);
 * - introspection: `active: true` with the token's claims while it is
 *   validly signed, unexpired, unrevoked and (for a person) its account and
 *   grant stand, to the same callers oidc-provider allows (introspection.ts);
 *   `{"active": false}` otherwise.
 * @see https://www.rfc-editor.org/rfc/rfc7009
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.2
 */

export interface StructuredTokenDeps {
  db: Db;
  hot: HotStatements;
  store: PayloadStore;
  cache: AdminDataCache;
  issuer: string;
  /** the provider's signing keys (private JWKs): their public halves verify the tokens */
  keys: JWK[];
  now: () => number;
}

/** claims only Gatehouse reads: not repeated by introspection */
const GRANT_CLAIM = 'grant_id';

/**
 * oidc-provider's JWT customizer:
 * - a person's access token names the grant it was issued under, so that
 *   introspection can tell whether it still stands (a grant id is no
 *   credential: it opens nothing by itself);
 * - a client's own token for the management API names the version of the
 *   client's credentials, which the management API compares on every request
 *   (services/admin-access.ts).
 */
export function customizeJwt(cache: AdminDataCache, issuer: string) {
  const managementApi = adminApiOf(issuer).identifier;
  return async (_ctx: unknown, token: { grantId?: string; accountId?: string; clientId?: string }, jwt: { payload: Record<string, unknown> }): Promise<void> => {
    if (token.grantId && token.accountId) jwt.payload[GRANT_CLAIM] = token.grantId;
    codeClaim(token, jwt.payload);
    if (!token.accountId && token.clientId && [jwt.payload.aud].flat().includes(managementApi)) {
      const client = await cache.client(token.clientId);
      if (client) jwt.payload[CREDENTIAL_CLAIM] = credentialVersion(client);
    }
  };
}

const isRoute = (ctx: { oidc?: { route?: string } }, route: string) => ctx.oidc?.route === route;

export function structuredTokens(deps: StructuredTokenDeps): Middleware {
  const keySet = createLocalJWKSet({ keys: deps.keys.map(publicJwk) as JWK[] });
  const mayIntrospect = introspectionPolicy(deps.cache, deps.hot);

  /** The claims of a JWT access token Gatehouse signed that has not expired; undefined for anything else. */
  async function verified(token: unknown): Promise<JWTPayload | undefined> {
    if (typeof token !== 'string') return undefined;
    try {
      const { payload } = await jwtVerify(token, keySet, { issuer: deps.issuer, typ: 'at+jwt', algorithms: [...SIGNING_ALGS], currentDate: new Date(deps.now()) });
      return payload;
    } catch {
      return undefined;
    }
  }

  async function revoke(ctx: KoaContextWithOIDC): Promise<void> {
    const claims = await verified(ctx.oidc.params?.token);
    if (claims && claims.client_id === ctx.oidc.client?.clientId) await revokeJwtAccessToken(deps.db, deps.store, claims);
    ctx.status = 200;
    ctx.body = '';
  }

  async function introspect(ctx: KoaContextWithOIDC): Promise<void> {
    const claims = await verified(ctx.oidc.params?.token);
    ctx.status = 200;
    const asTheyAre = claims && { clientId: claims.client_id as string, accountId: personOf(claims), aud: claims.aud };
    if (!claims || !(await mayIntrospect(ctx, ctx.oidc.client!, asTheyAre!)) || !(await jwtAccessTokenStands(deps.store, deps.hot, claims, deps.now()))) {
      ctx.body = { active: false };
      return;
    }
    const { [GRANT_CLAIM]: _grant, [CREDENTIAL_CLAIM]: _credential, [CODE_CLAIM]: _code, ...shown } = claims;
    const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
    ctx.body = { active: true, ...shown, token_type: jkt ? 'DPoP' : 'Bearer' };
  }

  return async (ctx, next) => {
    // every request passes here: anything but a revocation or introspection goes straight on
    if (ctx.method !== 'POST' || !(ctx.path.endsWith('/revocation') || ctx.path.endsWith('/introspection'))) return next();
    await next();
    const oidcCtx = ctx as unknown as KoaContextWithOIDC;
    const refused = ctx.status === 400 && (ctx.body as { error?: unknown } | undefined)?.error === 'unsupported_token_type';
    // oidc-provider only gets this far after it authenticated the client
    if (!refused || !oidcCtx.oidc?.client) return;
    if (isRoute(oidcCtx, 'revocation')) await revoke(oidcCtx);
    else if (isRoute(oidcCtx, 'introspection')) await introspect(oidcCtx);
  };
}
