import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { scopesForClient } from '../services/apis.js';
import { RESOURCES, SCOPES } from './client-metadata.js';

/**
 * `features.resourceIndicators.getResourceServerInfo` (RFC 8707): the API the
 * client asked for, with the scopes and token format it gets there.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#featuresresourceindicators
 */
export function resourceServerInfo(cache: AdminDataCache) {
  return async (_ctx: KoaContextWithOIDC, indicator: string, client: object): Promise<ResourceServer> => {
    const api = await cache.api(indicator);
    const c = client as Record<string, unknown>;
    const dynamic = api?.allowRegisteredClients ? (await cache.client(String(c.clientId)))?.dynamic : false;
    const scopes = scopesForClient(api, { resources: (c[RESOURCES] as string[] | undefined) ?? [], scopes: (c[SCOPES] as string[] | undefined) ?? [], dynamic });
    if (!api || !scopes) throw new errors.InvalidTarget();
    return {
      scope: scopes.join(' '),
      audience: api.identifier,
      // seconds
      accessTokenTTL: api.accessTokenTtl,
      accessTokenFormat: api.tokenFormat,
      ...(api.tokenFormat === 'jwt' ? { jwt: { sign: { alg: api.signingAlg } } } : {}),
    };
  };
}
