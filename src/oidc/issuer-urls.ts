import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';

/**
 * Every URL Gatehouse prints (discovery, registration_client_uri,
 * verification_uri, redirects) is built from ISSUER, never from the Host or
 * X-Forwarded-Host/-Proto headers, which any client can set. Koa derives
 * `href`, `origin`, `URL` and `secure` from `host` and `protocol`; pinning those
 * two on the app's request prototype pins them all, at no cost per request.
 * @see https://github.com/panva/node-oidc-provider/blob/main/lib/helpers/oidc_context.js (urlFor)
 */
export function pinUrlsToIssuer(provider: Provider, issuer: string): void {
  const { host, protocol } = new URL(issuer);
  Object.defineProperties(provider.request, {
    host: { get: () => host, configurable: true },
    protocol: { get: () => protocol.slice(0, -1), configurable: true },
  });
}

/** A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::(\d{1,5}))?$/;

export function isWellFormedHost(value: string): boolean {
  const match = HOST.exec(value);
  return match !== null && (match[1] === undefined || Number(match[1]) <= 65_535);
}

/**
 * In front of everything: a malformed Host header gets a 400 (it is the
 * client's mistake, and nothing downstream should meet it), and discovery and
 * /jwks may be cached for half the time a new key is published before it
 * signs, so a cache always sees the key in time.
 */
export function issuerGate(issuer: string, keyPublishLeadSeconds: number): Middleware {
  const expected = new URL(issuer).host;
  const cacheControl = `public, max-age=${Math.max(0, Math.min(3600, Math.floor(keyPublishLeadSeconds / 2)))}`;
  return async (ctx, next) => {
    const host = ctx.req.headers.host;
    if (host !== undefined && host !== expected && !isWellFormedHost(host)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'malformed Host header' };
      return;
    }
    if (ctx.method !== 'GET' || (ctx.path !== '/jwks' && !ctx.path.startsWith('/.well-known/'))) return next();
    await next();
    if (ctx.status === 200) ctx.set('Cache-Control', cacheControl);
  };
}
