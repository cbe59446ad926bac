import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { mayIntrospect } from '../services/apis.js';
import { findAccount } from '../services/accounts.js';
import type { HotStatements } from '../storage/hot-statements.js';

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
