/**
 * The OAuth vocabulary Gatehouse supports: one list each, shared by validation,
 * storage records, the oidc-provider configuration and the CLI help.
 */

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** RFC 8693: an API exchanges a person's token for a token to a downstream API */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token', DEVICE_CODE_GRANT, TOKEN_EXCHANGE_GRANT] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * client authentication at the token endpoint; `none` is a public client,
 * `private_key_jwt` (RFC 7523) signs an assertion with a key whose public half
 * the client registered (`jwks` or `jwks_uri`), and has no secret
 */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** The methods that authenticate with a shared secret (hashed at rest). */
export const SECRET_AUTH_METHODS: readonly AuthMethod[] = ['client_secret_basic', 'client_secret_post'];

/**
 * Security profiles a client can be held to: `default`, or `fapi2`, the FAPI 2.0
 * Security Profile (PAR, private_key_jwt, DPoP, PS256/ES256/EdDSA only, no
 * refresh-token rotation).
 */
export const CLIENT_PROFILES = ['default', 'fapi2'] as const;
export type ClientProfile = (typeof CLIENT_PROFILES)[number];
/** PKCE for a client's authorization requests: required (the default), or optional for a confidential client outside fapi2 */
export const PKCE_POLICIES = ['required', 'optional'] as const;
export type PkcePolicy = (typeof PKCE_POLICIES)[number];

/** FAPI 2.0 §5.4: the only JWS algorithms its clients and servers may use. */
export const FAPI2_SIGNING_ALGS = ['PS256', 'ES256', 'EdDSA'] as const;

/** how an API's access tokens look: self-contained RFC 9068 JWTs, or stored opaque handles */
export const TOKEN_FORMATS = ['jwt', 'opaque'] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];

/**
 * Algorithms Gatehouse signs with, one key pair each: ES256 (access tokens by
 * default) and RS256 (ID tokens, and APIs that only speak RSA).
 */
export const SIGNING_ALGS = ['ES256', 'RS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** Algorithms Gatehouse accepts on JWTs that clients sign (request objects, client assertions). */
export const CLIENT_SIGNING_ALGS = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const;

/** The OpenID Connect scopes Gatehouse offers; API scopes come from registered APIs. */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email'] as const;

/** Dynamic client registration: off, gated by initial access tokens, or open to anyone. */
export const REGISTRATION_MODES = ['off', 'initial-access-token', 'open'] as const;
export type RegistrationMode = (typeof REGISTRATION_MODES)[number];

/** The initial-access-token policy that lets a token register exactly one client. */
export const SINGLE_USE_POLICY = 'single-use';
