/**
 * The OAuth vocabulary Gatehouse supports: one list each, shared by validation,
 * storage records, the oidc-provider configuration and the CLI help.
 */

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token', DEVICE_CODE_GRANT] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** client authentication at the token endpoint; `none` is a public client */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

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
