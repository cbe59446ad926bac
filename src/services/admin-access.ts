import type { PayloadStore } from '../storage/oidc-payloads.js';
import type { AdminDataCache } from './admin-data-cache.js';
import { isJwtAccessTokenRevoked, type JwtAccessTokenClaims } from './access-tokens.js';

/**
 * Who may use the management API. Administration is a role, never a side
 * effect: the API admits a client's own `client_credentials` token whose
 * client, at the time of each request,
 * - still exists,
 * - still may get tokens for the management API with that scope,
 * - has not changed how it authenticates (secret, keys) since the token was
 *   issued,
 * and the token was not revoked (RFC 7009). A person's token, or a token made
 * by token exchange, is never an admin token: a person becomes an
 * administrator only through an explicit, audited role (which Gatehouse does
 * not have yet).
 *
 * The client comes from the admin-data cache (every node drops it within one
 * change-stamp poll of a change, and the node that made the change at once);
 * the revocation list is one lookup by primary key.
 */

export interface AdminRefusal {
  /** 401: the token no longer counts; 403: it never was an admin token */
  status: 401 | 403;
  message: string;
}

export interface ManagementTokenClaims extends JwtAccessTokenClaims {
  iat?: unknown;
}

/** iat is in whole seconds: a token issued in the second of a change counts as issued before it */
const issuedBefore = (iat: unknown, changedAt: Date | null) => changedAt !== null && (typeof iat !== 'number' || iat <= Math.floor(changedAt.getTime() / 1000));

export async function checkManagementToken(
  deps: { cache: AdminDataCache; store: PayloadStore },
  claims: ManagementTokenClaims,
  scope: string,
  audience: string,
): Promise<AdminRefusal | null> {
  const clientId = typeof claims.client_id === 'string' ? claims.client_id : undefined;
  if (!clientId || claims.sub !== clientId || claims.act !== undefined) {
    return { status: 403, message: "the management API takes a client's own token (client_credentials); a person's or an exchanged token is not an admin token" };
  }
  const client = await deps.cache.client(clientId);
  if (!client) return { status: 401, message: 'the client this token was issued to no longer exists' };
  const allowed = client.resources.includes(audience) && client.grantTypes.includes('client_credentials') && (client.scopes.length === 0 || client.scopes.includes(scope));
  if (!allowed) return { status: 403, message: `the client this token was issued to may no longer use the management API with ${scope}` };
  if (issuedBefore(claims.iat, client.credentialsChangedAt)) return { status: 401, message: "the token was issued before the client's credentials changed: get a new one" };
  if (await isJwtAccessTokenRevoked(deps.store, claims)) return { status: 401, message: 'the token was revoked' };
  return null;
}
