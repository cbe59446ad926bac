import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Middleware } from 'koa';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { mayIntrospect } from '../services/apis.js';
import { findAccount } from '../services/accounts.js';
import type { HotStatements } from '../storage/hot-statements.js';

/**
 * RFC 7662 §2.2: a token the caller may not learn about is `{"active": false}`.
 * oidc-provider answers 400 unsupported_token_type for a JWT access token (it
 * does not introspect structured tokens); this middleware gives the answer the
 * RFC asks for. A resource server validates Gatehouse's JWTs with /jwks.
 */
export const inactiveForStructuredTokens: Middleware = async (ctx, next) => {
  // every request passes here: anything but an introspection goes straight on
  if (ctx.method !== 'POST' || !ctx.path.endsWith('/introspection')) return next();
  await next();
  const oidc = (ctx as { oidc?: { route?: string } }).oidc;
  if (oidc?.route === 'introspection' && ctx.status === 400 && (ctx.body as { error?: unknown } | undefined)?.error === 'unsupported_token_type') {
    ctx.status = 200;
    ctx.body = { active: false };
  }
};

/** A token as introspection sees it: JWT access tokens carry `aud`, stored ones their API. */
interface IntrospectedToken {
  clientId?: string;
  /** the person, for tokens issued on their behalf */
  accountId?: string;
  aud?: string | string[];
  resourceServer?: { audience?: string };
}

/**
 * `features.introspection.allowedPolicy`: who may learn about a token. A
 * token of a person whose account is disabled or deleted is inactive for
 * everyone (disabling ends the stored tokens; this covers one that raced it).
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#featuresintrospection
 */
export function introspectionPolicy(cache: AdminDataCache, hot: HotStatements) {
  return async (_ctx: KoaContextWithOIDC, client: { clientId: string }, token: object): Promise<boolean> => {
    const t = token as IntrospectedToken;
    const audiences = [t.aud ?? t.resourceServer?.audience ?? []].flat().filter((a): a is string => typeof a === 'string');
    if (!(await mayIntrospect(client.clientId, t, () => Promise.all(audiences.map((a) => cache.api(a)))))) return false;
    return !t.accountId || (await findAccount(hot, t.accountId)) !== null;
  };
}
