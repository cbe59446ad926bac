import type { ClientMetadata } from 'oidc-provider';
import type { ClientRecord } from '../services/clients.js';

/** Extra client metadata Gatehouse keeps on oidc-provider's Client objects. */
export const FIRST_PARTY = 'gatehouse_first_party';
export const RESOURCES = 'gatehouse_resources';
/** API scopes this client may be granted; empty means every scope of its APIs. */
export const SCOPES = 'gatehouse_scopes';
/** The security profile the client is held to: `default` or `fapi2`. */
export const PROFILE = 'gatehouse_profile';

/** `required` or `optional`: PKCE on this client's authorization requests. */
export const PKCE = 'gatehouse_pkce';

/** Whether oidc-provider's Client object belongs to a FAPI 2.0 client. */
export const isFapi2 = (client: object | undefined) => (client as Record<string, unknown> | undefined)?.[PROFILE] === 'fapi2';

/**
 * Whether an authorization request of this client must carry PKCE: always, but
 * for a confidential client an admin made PKCE-optional (the services' rules
 * refuse that for public and fapi2 clients; checked again here).
 */
export function pkceRequired(client: object | undefined): boolean {
  const c = client as Record<string, unknown> | undefined;
  return !c || c[PKCE] !== 'optional' || isFapi2(c) || c.clientAuthMethod === 'none' || c.tokenEndpointAuthMethod === 'none';
}

/**
 * FAPI 2.0 Security Profile §5.3 as client metadata oidc-provider enforces:
 * pushed authorization requests only, DPoP-bound access tokens, and ID tokens
 * signed with ES256 (of the algorithms Gatehouse signs with, the one the profile
 * allows). oidc-provider's `features.fapi` adds the rest for these clients
 * (configuration.ts).
 */
const FAPI2_METADATA = {
  require_pushed_authorization_requests: true,
  dpop_bound_access_tokens: true,
  id_token_signed_response_alg: 'ES256',
} as const;

/** Registered metadata Gatehouse keeps as given, for consent pages and RFC 7592 reads. */
export const DISPLAY_METADATA = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'contacts', 'software_id', 'software_version'] as const;

/** Registered protocol choices Gatehouse keeps as given (oidc-provider validated them at registration). */
export const PROTOCOL_METADATA = ['id_token_signed_response_alg', 'userinfo_signed_response_alg', 'default_max_age', 'require_auth_time'] as const;

/** The metadata a registration keeps beyond Gatehouse's own fields. */
export const REGISTERED_METADATA = [...DISPLAY_METADATA, ...PROTOCOL_METADATA] as const;

export function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => source[k] !== undefined).map((k) => [k, source[k]]));
}

/**
 * Maps a stored client to oidc-provider metadata. `client_secret` carries the
 * argon2id hash: oidc-provider never compares it directly, because
 * `compareClientSecret` is replaced (see provider.ts).
 */
export function toClientMetadata(client: ClientRecord): ClientMetadata {
  const responseTypes: 'code'[] = client.grantTypes.includes('authorization_code') ? ['code'] : [];
  return {
    client_id: client.clientId,
    client_name: client.name,
    ...(client.secretHash ? { client_secret: client.secretHash } : {}),
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    ...(client.jwks ? { jwks: client.jwks as ClientMetadata['jwks'] } : {}),
    ...(client.jwksUri ? { jwks_uri: client.jwksUri } : {}),
    grant_types: client.grantTypes,
    response_types: responseTypes,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    ...(client.backchannelLogoutUri
      ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
    ...pick(client.metadata, REGISTERED_METADATA),
    ...(client.requirePar ? { require_pushed_authorization_requests: true } : {}),
    ...(client.profile === 'fapi2' ? FAPI2_METADATA : {}),
    [PROFILE]: client.profile,
    [PKCE]: client.pkce,
    [FIRST_PARTY]: client.firstParty,
    [RESOURCES]: client.resources,
    [SCOPES]: client.scopes,
  };
}
