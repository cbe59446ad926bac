import { z } from 'zod';
import { LOOPBACK_HOSTS } from '../common/loopback.js';
import { formatProblem, type Problem } from './errors.js';
import { isStorable } from '../storage/text.js';
import { AUTH_METHODS, DEVICE_CODE_GRANT, GRANT_TYPES, SIGNING_ALGS, TOKEN_FORMATS } from '../common/protocol.js';

/**
 * Rules for client and API input: one definition, so every door (CLI flags,
 * seed files, dynamic registration) accepts and refuses the same things.
 */

/** https, or http on a loopback host for development; never a fragment (RFC 9700 §2.1). */
/** Text every database stores as given: no NUL, no lone UTF-16 surrogate. */
const text = z.string().refine(isStorable, 'must not contain a NUL character or a lone UTF-16 surrogate');

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

/** RFC 6749 §3.3 scope-token. */
export const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'not a valid scope token');

export const clientId = z
  .string()
  .regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ ~ -');

const unique = <T extends z.ZodTypeAny>(item: T) =>
  z.array(item).refine((a) => new Set(a).size === a.length, 'must not repeat a value');

/** Where RP-initiated logout may return to: the same rules as redirect URIs. */
export const postLogoutRedirectUri = redirectUri;

export const clientFields = z.object({
  clientId: clientId.optional(),
  name: text.trim().min(1).max(200),
  grantTypes: unique(z.enum(GRANT_TYPES)).min(1).default(['client_credentials']),
  redirectUris: unique(redirectUri).default([]),
  tokenEndpointAuthMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
  scopes: unique(scopeToken).default([]),
  resources: unique(resourceIdentifier).default([]),
  firstParty: z.boolean().default(false),
  postLogoutRedirectUris: unique(postLogoutRedirectUri).default([]),
  /** OpenID Connect Back-Channel Logout 1.0 endpoint */
  backchannelLogoutUri: redirectUri.nullable().default(null),
  /** RFC 9126: only pushed authorization requests */
  requirePar: z.boolean().default(false),
});

export type ClientFields = z.infer<typeof clientFields>;

/** Rules that span several fields of a client. */
export function checkClient(
  c: Pick<ClientFields, 'grantTypes' | 'redirectUris' | 'tokenEndpointAuthMethod'> &
    Partial<Pick<ClientFields, 'postLogoutRedirectUris' | 'backchannelLogoutUri'>>,
  ctx: z.RefinementCtx,
): void {
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
  identifier: resourceIdentifier,
  name: text.trim().min(1).max(200).optional(),
  scopes: unique(scopeToken).default([]),
  /** seconds: 1 minute to 1 day */
  accessTokenTtl: z.number().int().min(60).max(86_400).default(600),
  tokenFormat: z.enum(TOKEN_FORMATS).default('jwt'),
  signingAlg: z.enum(SIGNING_ALGS).default('ES256'),
  /** clients (the API's own credentials) that may introspect its tokens */
  introspectors: unique(clientId).default([]),
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
