import { createHash } from 'node:crypto';
import type { PayloadStore } from '../storage/oidc-payloads.js';
import type { ClientRecord } from '../storage/clients.js';
import type { AdminDataCache } from './admin-data-cache.js';
import { isJwtAccessTokenRevoked, type JwtAccessTokenClaims } from './access-tokens.js';

/**
 * Who may use the management API. Administration is a role, never a side
 * effect: the API admits a client's own `client_credentials` token whose
 * client, at the time of each request,
 * - still exists,
 * - still may get tokens for the management API with that scope,
 * - is the same client, authenticating the same way, as when the token was
 *   issued: the token carries a digest of the client's credentials
 *   (`gatehouse_credential`, credentialVersion below), so a rotated secret or
 *   new keys end it, and so does deleting the client and making another with
 *   the same id. A token minted with an old secret by a node that had not yet
 *   seen the rotation carries the old version, and is refused as well,
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

/** the claim of a management token that names the credentials it was issued to */
export const CREDENTIAL_CLAIM = 'gatehouse_credential';

export interface ManagementTokenClaims extends JwtAccessTokenClaims {
  [CREDENTIAL_CLAIM]?: unknown;
}

/**
 * The version of how a client authenticates, as a short digest: its method,
 * secret hash, keys, and when the client was made (a client deleted and made
 * again with the same id is another client). It reveals nothing: the secret
 * hash is itself an argon2id hash of a random secret.
 */
export function credentialVersion(client: Pick<ClientRecord, 'tokenEndpointAuthMethod' | 'secretHash' | 'jwks' | 'jwksUri' | 'createdAt'>): string {
  const material = JSON.stringify([client.tokenEndpointAuthMethod, client.secretHash, client.jwks, client.jwksUri, client.createdAt.getTime()]);
  return createHash('sha256').update(material).digest('base64url').slice(0, 22);
}

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
  if (claims[CREDENTIAL_CLAIM] !== credentialVersion(client)) {
    return { status: 401, message: "the token was issued to this client's earlier credentials (a rotated secret or keys, or a client deleted since): get a new one" };
  }
  if (await isJwtAccessTokenRevoked(deps.store, claims)) return { status: 401, message: 'the token was revoked' };
  return null;
}
