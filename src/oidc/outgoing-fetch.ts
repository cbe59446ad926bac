import type { Db } from '../storage/database.js';
import { isAdminOutgoingUri } from '../services/clients.js';

/**
 * oidc-provider's `fetch` when ALLOW_PRIVATE_NETWORK_REQUESTS is on. Its own
 * fetch refuses special-use addresses (SSRF); this lets back-channel logout
 * and jwks_uri fetches reach clients an admin registered, and keeps every other
 * request protected.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#fetch
 */
export function privateNetworkFetch(db: Db) {
  return async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const target = url instanceof Request ? url.url : String(url);
    if (!(await isAdminOutgoingUri(db, target))) return globalThis.fetch(url, init);
    // without oidc-provider's dispatcher, which is what refuses private addresses
    const { dispatcher, ...options } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
    return globalThis.fetch(url, options);
  };
}
