import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { mayIntrospect } from '../services/apis.js';

/** A token as introspection sees it: JWT access tokens carry `aud`, stored ones their API. */
interface IntrospectedToken {
  clientId?: string;
  aud?: string | string[];
  resourceServer?: { audience?: string };
}

/**
 * `features.introspection.allowedPolicy`: who may learn about a token.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#featuresintrospection
 */
export function introspectionPolicy(cache: AdminDataCache) {
  return async (_ctx: KoaContextWithOIDC, client: { clientId: string }, token: object): Promise<boolean> => {
    const t = token as IntrospectedToken;
    const audiences = [t.aud ?? t.resourceServer?.audience ?? []].flat().filter((a): a is string => typeof a === 'string');
    return mayIntrospect(client.clientId, t, () => Promise.all(audiences.map((a) => cache.api(a))));
  };
}
