import type { Middleware } from 'koa';

/** Where oidc-provider serves its metadata for an issuer without a path (both names run its one `discovery` action). */
export const OAUTH_METADATA_PATH = '/.well-known/oauth-authorization-server';
export const OPENID_CONFIGURATION_PATH = '/.well-known/openid-configuration';

/**
 * RFC 8414 authorization-server metadata, from oidc-provider's own discovery
 * document, so it can never disagree with /.well-known/openid-configuration.
 *
 * oidc-provider (9.x) registers its `discovery` action at both
 * `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`:
 * one computation, the same `issuer`, endpoints, CORS, and the `Cache-Control`
 * that `issuerGate` adds to every GET of `/.well-known/*`. For an ISSUER without
 * a path (the usual case) that already is RFC 8414 §3, and this middleware does
 * nothing.
 *
 * An ISSUER with a path, e.g. `https://x/auth`: Gatehouse still serves every route
 * at the root of its host (the printed endpoints are `https://x/token`,
 * `https://x/auth` for authorization, …; the issuer's path is not a mount
 * point), and the two root documents above keep answering. The places clients
 * look for this issuer's metadata are answered too, each by sending the request
 * on to oidc-provider's own discovery route (the URL is rewritten only while
 * oidc-provider handles it):
 * - `https://x/.well-known/oauth-authorization-server/auth`: RFC 8414 §3.1 (the
 *   well-known segment inserted before the path);
 * - `https://x/.well-known/openid-configuration/auth`: the same insertion for the
 *   OpenID name (RFC 8414 §5; MCP clients try it);
 * - `https://x/auth/.well-known/openid-configuration`: OpenID Connect Discovery
 *   1.0 §4 (the segment appended to the issuer).
 * A proxy in front must send those three paths to Gatehouse unchanged.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
 */
export function authorizationServerMetadata(issuer: string): Middleware | undefined {
  const path = new URL(issuer).pathname.replace(/\/+$/, '');
  // an issuer without a path needs nothing: no pass-through on every request (/token included)
  if (!path) return undefined;
  const aliases = new Set([`${OAUTH_METADATA_PATH}${path}`, `${OPENID_CONFIGURATION_PATH}${path}`, `${path}${OPENID_CONFIGURATION_PATH}`]);
  return async function issuerPathMetadata(ctx, next) {
    // GET also answers HEAD; OPTIONS is oidc-provider's CORS preflight for discovery
    if (!aliases.has(ctx.path) || (ctx.method !== 'GET' && ctx.method !== 'HEAD' && ctx.method !== 'OPTIONS')) return next();
    const url = ctx.url;
    ctx.path = OAUTH_METADATA_PATH;
    try {
      await next();
    } finally {
      ctx.url = url;
    }
  };
}
