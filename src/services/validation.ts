import { z } from 'zod';
import { isLoopbackHttp, LOOPBACK_HOSTS } from '../common/loopback.js';
import { formatProblem, type Problem } from './errors.js';
import { PRIVATE_JWK_MEMBERS } from '../common/jwk.js';
import { isStorable } from '../storage/text.js';
import { AUTH_METHODS, CLIENT_PROFILES, DEVICE_CODE_GRANT, PKCE_POLICIES, GRANT_TYPES, SIGNING_ALGS, TOKEN_EXCHANGE_GRANT, TOKEN_FORMATS } from '../common/protocol.js';

/**
 * Rules for client and API input: one definition, so every door (CLI flags,
 * seed files, dynamic registration) accepts and refuses the same things.
 */

/** https, or http on a loopback host for development; never a fragment (RFC 9700 §2.1). */
/** Text every database stores as given: no NUL, no lone UTF-16 surrogate. */
const text = z.string().refine(isStorable, 'must not contain a NUL character or a lone UTF-16 surrogate');
/** A display name: one line of text, without control characters (they would act in a terminal). */
const displayName = text.trim().min(1).max(200).refine((v) => !/[\u0000-\u001f\u007f-\u009f]/.test(v), 'must not contain control characters');

export const redirectUri = text.superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not an absolute URL: ${value}` });
    return;
  }
  if (value.includes('#')) ctx.addIssue({ code: 'custom', message: `must not contain a fragment: ${value}` });
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
    ctx.addIssue({ code: 'custom', message: `must use https (http only for localhost, 127.0.0.1 or [::1]): ${value}` });
  } else if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: `must use https: ${value}` });
  }
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: `must not contain credentials: ${value}` });
});

/** An RFC 8707 resource indicator: an absolute URI without a fragment. */
export const resourceIdentifier = text.superRefine((value, ctx) => {
  try {
    new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not an absolute URI: ${value}` });
    return;
  }
  if (value.includes('#')) ctx.addIssue({ code: 'custom', message: `must not contain a fragment: ${value}` });
});

/** RFC 8141: urn:<namespace id>:<namespace-specific string> */
/** An API identifier is a URL clients send and headers carry: as long as browsers keep URLs. */
const MAX_IDENTIFIER_LENGTH = 2048;
const URN = /^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+$/i;

/**
 * An API's identifier (the `aud` of its tokens, RFC 8707): an absolute https
 * URI (http only on a loopback host, as for redirect URIs) or a URN, without a
 * fragment. Other schemes (javascript:, data:, api://) are refused: the
 * identifier is shown to people and used as a URL by APIs and tools.
 */
export const apiIdentifier = resourceIdentifier.superRefine((value, ctx) => {
  if (!URL.canParse(value)) return; // resourceIdentifier said so
  const url = new URL(value);
  if (url.protocol === 'urn:') {
    if (!URN.test(value)) ctx.addIssue({ code: 'custom', message: `a URN must be urn:<namespace>:<name>: ${value}` });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: `must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>): ${value}` });
    return;
  }
  // (the URL parser reads "https:host" as "https://host/"; the identifier must say what it means)
  if (!/^https?:\/\//i.test(value)) ctx.addIssue({ code: 'custom', message: `not an absolute URI: ${value}` });
  else if (url.protocol === 'http:' && !isLoopbackHttp(url)) {
    ctx.addIssue({ code: 'custom', message: `must use https (http only for localhost, 127.0.0.1 or [::1]): ${value}` });
  }
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: `must not contain credentials: ${value}` });
  if (url.search) ctx.addIssue({ code: 'custom', message: `must not have a query: ${value}` });
  // one spelling per API: lookalikes (HTTPS://, /./, %7e) would be other APIs that read the same
  const normal = url.href;
  if (!url.search && /^https?:\/\//i.test(value) && value !== normal && `${value}/` !== normal) ctx.addIssue({ code: 'custom', message: `must be written in its normal form (${normal}): ${value}` });
}).refine((value) => value.length <= MAX_IDENTIFIER_LENGTH, `must be at most ${MAX_IDENTIFIER_LENGTH} characters`);

/** RFC 6749 §3.3 scope-token. */
export const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'not a valid scope token');

/** A client id, from any door (CLI, seed, management API, registration): never a leading "-", which the CLI would read as a flag. */
export const clientId = z
  .string()
  .regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ ~ -')
  .refine((v) => !v.startsWith('-'), 'must not start with "-" (a command line would read it as a flag)')
  .refine((v) => v !== '.' && v !== '..', 'must not be "." or ".." (a URL path would read it as a dot segment: /admin/v1/clients/.. is /admin/v1)');

const unique = <T extends z.ZodTypeAny>(item: T) =>
  z.array(item).refine((a) => new Set(a).size === a.length, 'must not repeat a value');

/** Where RP-initiated logout may return to: the same rules as redirect URIs. */
export const postLogoutRedirectUri = redirectUri;

/** The members each key type needs to verify a signature. */
const PUBLIC_JWK_MEMBERS: Record<string, string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] };

/** A public key a client signs its assertions with: RSA, EC or OKP, never private or symmetric material. */
export const publicJwk = z.record(z.string(), z.unknown()).superRefine((key, ctx) => {
  const needed = PUBLIC_JWK_MEMBERS[String(key.kty)];
  if (!needed) {
    ctx.addIssue({ code: 'custom', path: ['kty'], message: 'must be RSA, EC or OKP (a public key)' });
    return;
  }
  for (const member of needed) {
    if (typeof key[member] !== 'string' || !key[member]) ctx.addIssue({ code: 'custom', path: [member], message: `a ${key.kty} key needs "${member}"` });
  }
  for (const member of PRIVATE_JWK_MEMBERS) {
    if (member in key) ctx.addIssue({ code: 'custom', path: [member], message: `must be a public key: remove "${member}" (never share a private key)` });
  }
  for (const [member, value] of Object.entries(key)) {
    if (typeof value === 'string' && !isStorable(value)) ctx.addIssue({ code: 'custom', path: [member], message: 'must not contain a NUL character or a lone UTF-16 surrogate' });
  }
});

/** A JWK Set (RFC 7517 §5) of public keys: 1 to 20 keys. */
export const publicJwks = z.object({ keys: z.array(publicJwk).min(1, 'must hold at least one key').max(20, 'at most 20 keys') });

export const clientFields = z.object({
  clientId: clientId.optional(),
  name: displayName,
  grantTypes: unique(z.enum(GRANT_TYPES)).min(1).default(['client_credentials']),
  redirectUris: unique(redirectUri).default([]),
  tokenEndpointAuthMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
  /** private_key_jwt: the client's public keys, or where it publishes them (https) */
  jwks: publicJwks.nullable().default(null),
  jwksUri: redirectUri.nullable().default(null),
  /** default, or fapi2: the FAPI 2.0 Security Profile */
  profile: z.enum(CLIENT_PROFILES).default('default'),
  scopes: unique(scopeToken).default([]),
  resources: unique(resourceIdentifier).default([]),
  firstParty: z.boolean().default(false),
  postLogoutRedirectUris: unique(postLogoutRedirectUri).default([]),
  /** OpenID Connect Back-Channel Logout 1.0 endpoint */
  backchannelLogoutUri: redirectUri.nullable().default(null),
  /** RFC 9126: only pushed authorization requests */
  requirePar: z.boolean().default(false),
  /** PKCE on authorization requests: required, or optional for a confidential client (RFC 9700 §2.1.1) */
  pkce: z.enum(PKCE_POLICIES).default('required'),
});

export type ClientFields = z.infer<typeof clientFields>;

/** Rules that span several fields of a client. */
export function checkClient(
  c: Pick<ClientFields, 'grantTypes' | 'redirectUris' | 'tokenEndpointAuthMethod'> &
    Partial<Pick<ClientFields, 'postLogoutRedirectUris' | 'backchannelLogoutUri' | 'jwks' | 'jwksUri' | 'profile' | 'pkce'>>,
  ctx: z.RefinementCtx,
): void {
  const keysGiven = Boolean(c.jwks) || Boolean(c.jwksUri);
  if (c.tokenEndpointAuthMethod === 'private_key_jwt' && !keysGiven) {
    ctx.addIssue({ code: 'custom', path: ['jwks'], message: "private_key_jwt needs the client's public keys: jwks or jwksUri" });
  }
  if (c.jwks && c.jwksUri) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give jwks or jwksUri, not both' });
  if (c.tokenEndpointAuthMethod !== 'private_key_jwt' && keysGiven) {
    ctx.addIssue({ code: 'custom', path: [c.jwks ? 'jwks' : 'jwksUri'], message: 'jwks and jwksUri are only used with private_key_jwt' });
  }
  if (c.profile === 'fapi2') {
    if (c.tokenEndpointAuthMethod !== 'private_key_jwt') {
      ctx.addIssue({ code: 'custom', path: ['tokenEndpointAuthMethod'], message: 'the fapi2 profile allows only private_key_jwt' });
    }
    if (c.grantTypes.includes(DEVICE_CODE_GRANT)) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'the fapi2 profile has no device flow (authorization requests must be pushed)' });
    }
  }
  if (c.pkce === 'optional' && (c.tokenEndpointAuthMethod === 'none' || c.profile === 'fapi2')) {
    ctx.addIssue({ code: 'custom', path: ['pkce'], message: c.profile === 'fapi2' ? 'the fapi2 profile requires PKCE' : 'a public client (none) must use PKCE' });
  }
  if (c.tokenEndpointAuthMethod === 'none' && c.grantTypes.includes(TOKEN_EXCHANGE_GRANT)) {
    ctx.addIssue({ code: 'custom', path: ['tokenEndpointAuthMethod'], message: 'a public client (none) cannot exchange tokens' });
  }
  if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'authorization_code needs at least one redirect URI' });
  }
  if (!c.grantTypes.includes('authorization_code') && c.redirectUris.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'redirect URIs are only used with authorization_code' });
  }
  if (c.grantTypes.includes('refresh_token') && !c.grantTypes.includes('authorization_code') && !c.grantTypes.includes(DEVICE_CODE_GRANT)) {
    ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'refresh_token needs authorization_code or the device code grant' });
  }
  if (!c.grantTypes.includes('authorization_code') && (c.postLogoutRedirectUris?.length || c.backchannelLogoutUri)) {
    ctx.addIssue({ code: 'custom', path: ['postLogoutRedirectUris'], message: 'logout settings are only used with authorization_code' });
  }
  if (c.tokenEndpointAuthMethod === 'none' && c.grantTypes.includes('client_credentials')) {
    ctx.addIssue({ code: 'custom', path: ['tokenEndpointAuthMethod'], message: 'a public client (none) cannot use client_credentials' });
  }
}

export const clientInput = clientFields.superRefine(checkClient);

export const apiInput = z.object({
  identifier: apiIdentifier,
  name: displayName.optional(),
  scopes: unique(scopeToken).default([]),
  /** seconds: 1 minute to 1 day */
  accessTokenTtl: z.number().int().min(60).max(86_400).default(600),
  tokenFormat: z.enum(TOKEN_FORMATS).default('jwt'),
  signingAlg: z.enum(SIGNING_ALGS).default('ES256'),
  /** clients (the API's own credentials) that may introspect its tokens */
  introspectors: unique(clientId).default([]),
  /** apps that registered themselves (RFC 7591) may get tokens for it without an admin's grant */
  allowRegisteredClients: z.boolean().default(false),
});

export type ApiInput = z.infer<typeof apiInput>;

/** The issues of a failed parse, as problems with their paths. */
export function zodProblems(error: z.ZodError): Problem[] {
  return error.issues.map((issue) => ({ path: issue.path as (string | number)[], message: issue.message }));
}

/** "path: message" lines for every issue, in order. */
export function formatIssues(error: z.ZodError, prefix: (string | number)[] = []): string[] {
  return zodProblems(error).map((p) => formatProblem(p, prefix));
}

/**
 * Every API a client names must exist, and every scope must belong to one of
 * its APIs. `apiScopes` maps each known API to its scopes.
 */
export function clientReferenceProblems(
  client: { resources: string[]; scopes: string[] },
  apiScopes: Map<string, string[]>,
): Problem[] {
  const problems: Problem[] = [];
  client.resources.forEach((r, index) => {
    if (!apiScopes.has(r)) problems.push({ path: ['resources', index], message: `unknown API ${r}`, hint: 'create it first with: gatehouse resources create' });
  });
  const known = new Set(client.resources.flatMap((r) => apiScopes.get(r) ?? []));
  client.scopes.forEach((s, index) => {
    if (!known.has(s)) problems.push({ path: ['scopes', index], message: `${s} is not a scope of the client's APIs` });
  });
  return problems;
}
