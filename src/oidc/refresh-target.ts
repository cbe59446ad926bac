import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

/**
 * A refresh request for an API the refresh token was never granted is refused
 * before anything is spent. oidc-provider's refresh_token grant consumes the
 * token (and saves its successor) before it resolves `resource`, so a refused
 * request would burn the person's token: the app's retry would then look like
 * reuse and revoke the whole grant. Here the target is checked first, the same
 * way the grant will (granted to the token, allowed to the client), and only
 * a request that names one goes on to the grant.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 */

interface RefreshTokenLike {
  resourceIndicators: Set<string>;
}

export function installRefreshTargetCheck(provider: Provider): void {
  const handlers = instance(provider).grantTypeHandlers;
  const refreshGrant = handlers.get('refresh_token');
  if (!refreshGrant) return;
  const config = (instance(provider) as unknown as { configuration: { features: { resourceIndicators: { getResourceServerInfo(ctx: KoaContextWithOIDC, resource: string, client: unknown): Promise<unknown> } } } }).configuration;
  const model = provider.RefreshToken as unknown as { find(value: string, options: { ignoreExpiration: boolean }): Promise<RefreshTokenLike | undefined> };

  handlers.set('refresh_token', async function refreshWithTargetCheck(ctx: KoaContextWithOIDC) {
    const { resource, refresh_token: value } = (ctx.oidc.params ?? {}) as { resource?: unknown; refresh_token?: unknown };
    if (typeof resource === 'string' && resource && typeof value === 'string' && value) {
      const token = await model.find(value, { ignoreExpiration: true });
      // an unknown token: the grant gives its own answer
      if (token) {
        if (!token.resourceIndicators.has(resource)) throw new errors.InvalidTarget();
        // throws invalid_target for an API the client may no longer use
        await config.features.resourceIndicators.getResourceServerInfo(ctx, resource, ctx.oidc.client);
      }
    }
    return refreshGrant(ctx);
  });
}
