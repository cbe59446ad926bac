import type { ApiRecord } from '../storage/apis.js';
import { adminApiOf, scopesForClient } from './apis.js';

/**
 * The rules of RFC 8693 token exchange, written once: an API that received a
 * person's access token exchanges it for a token to a downstream API, with the
 * person as `sub` and the calling API in `act`. Admin decisions and the
 * person's own consent only, no tables of their own:
 * - the exchanging client must be one of the subject token's API's own
 *   credentials (its `introspectors`);
 * - the target API must be one the client may get tokens for anyway
 *   (`scopesForClient`), and never the management API;
 * - the scopes are the target API's own, no wider than what the client may get
 *   there nor than what the person granted the app there (`exchangedScopes`);
 * - a DPoP-bound subject token is exchanged only with a proof of its key, and
 *   the new token is bound to that key;
 * - the new token never outlives the subject token, and a chain of exchanges
 *   is at most `MAX_EXCHANGE_CHAIN` actors long.
 * Every function here is pure; oidc/token-exchange.ts reads the tokens and the
 * person's grant, and turns a refusal into oidc-provider's error.
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */

/** RFC 8693 §3: the only token type Gatehouse takes and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * The claim of an exchanged token that names the app the person signed in to
 * (whose grant is the evidence of their consent, see `exchangedScopes`), so a
 * chain of exchanges keeps asking that same grant. The exchanged token's
 * `client_id` is the exchanging API, and `act` lists only actors.
 */
export const APP_CLAIM = 'gatehouse_app';

/**
 * How many actors one token's `act` may name: every exchange adds one. Real
 * call chains are a few hops; the limit keeps tokens (and their parsing)
 * bounded.
 */
export const MAX_EXCHANGE_CHAIN = 32;
export const CHAIN_TOO_LONG = `exchange chain too long: a token may name at most ${MAX_EXCHANGE_CHAIN} actors in act (one per exchange)`;

export type ExchangeErrorCode = 'invalid_request' | 'unauthorized_client' | 'invalid_target' | 'invalid_scope' | 'invalid_dpop_proof';

/** A refused exchange: the OAuth error code (RFC 8693 §2.2.2) and a description for the client. */
export class ExchangeRefused extends Error {
  constructor(
    readonly code: ExchangeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExchangeRefused';
  }
}

/** Unknown and forbidden targets get the same words, so no client can probe which APIs exist. */
export const TARGET_REFUSED = 'the target API is unknown or not allowed for this client';
/** The management API is no secret (its identifier follows from the issuer), so its refusal says why. */
export const MANAGEMENT_API_REFUSED = 'the management API is never a token exchange target';

/** RFC 8693 §4.1: who acts for the person; a chain of exchanges nests. */
export interface Actor {
  sub: string;
  act?: Actor;
}

/** A subject token Gatehouse issued, as far as the rules care. */
export interface SubjectToken {
  /** the person; undefined for a client's own (client_credentials) token */
  accountId?: string;
  /** the client the token was issued to */
  clientId: string;
  /**
   * the app the person granted access to: the client of a token from a
   * sign-in, the recorded one (APP_CLAIM) of an exchanged token
   */
  app?: string;
  /** the grant a stored token belongs to (exchanged tokens have none) */
  grantId?: string;
  /** the APIs it was issued for (RFC 8707 identifiers) */
  audiences: string[];
  scopes: string[];
  /** seconds since the epoch */
  exp: number;
  /** set when the token itself came from an exchange */
  act?: Actor;
  /** RFC 9449: the thumbprint of the DPoP key the token is bound to */
  jkt?: string;
}

/** The token endpoint parameters of RFC 8693 §2.1 (repeatable ones may be arrays). */
export interface ExchangeParams {
  subject_token?: unknown;
  subject_token_type?: unknown;
  actor_token?: unknown;
  actor_token_type?: unknown;
  requested_token_type?: unknown;
  resource?: unknown;
  audience?: unknown;
}

const refuse = (code: ExchangeErrorCode, message: string): never => {
  throw new ExchangeRefused(code, message);
};

const given = (value: unknown) => value !== undefined && value !== null && value !== '';

function values(value: unknown): string[] {
  if (!given(value)) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string' && v !== '');
}

/**
 * What the request asks for: the subject token and the one target API
 * (`resource` or `audience`, both meaning an API identifier). Only access
 * tokens in and out; actor tokens (delegation by a second token) are not
 * supported.
 */
export function readExchangeRequest(params: ExchangeParams): { subjectToken: string; target: string } {
  if (typeof params.subject_token !== 'string' || !params.subject_token) refuse('invalid_request', 'missing required parameter subject_token');
  if (!given(params.subject_token_type)) refuse('invalid_request', 'missing required parameter subject_token_type');
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) refuse('invalid_request', `unsupported subject_token_type: only ${ACCESS_TOKEN_TYPE}`);
  if (given(params.actor_token) || given(params.actor_token_type)) refuse('invalid_request', 'actor_token is not supported: the exchanging client is the actor');
  if (given(params.requested_token_type) && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    refuse('invalid_request', `unsupported requested_token_type: only ${ACCESS_TOKEN_TYPE}`);
  }
  const targets = [...new Set([...values(params.resource), ...values(params.audience)])];
  if (targets.length === 0) refuse('invalid_request', 'missing required parameter resource (or audience): the API the new token is for');
  if (targets.length > 1) refuse('invalid_target', 'only one target API (resource or audience) per exchange');
  return { subjectToken: params.subject_token as string, target: targets[0] };
}

/**
 * An `act` claim as Gatehouse writes it, or undefined when there is none. A
 * chain longer than MAX_EXCHANGE_CHAIN is refused as such, not as malformed.
 */
export function readActor(value: unknown): Actor | undefined {
  const chain: string[] = [];
  for (let v = value; v !== undefined && v !== null; v = (v as Record<string, unknown>).act) {
    const sub = (v as Record<string, unknown>).sub;
    if (typeof v !== 'object' || Array.isArray(v) || typeof sub !== 'string') refuse('invalid_request', 'subject token has a malformed act claim');
    if (chain.length === MAX_EXCHANGE_CHAIN) refuse('invalid_request', CHAIN_TOO_LONG);
    chain.push(sub as string);
  }
  return chain.reduceRight<Actor | undefined>((inner, sub) => ({ sub, ...(inner ? { act: inner } : {}) }), undefined);
}

/** How many actors an `act` chain names. */
export function chainLength(act: Actor | undefined): number {
  let length = 0;
  for (let a = act; a; a = a.act) length += 1;
  return length;
}

const audiencesOf = (aud: unknown) => [aud ?? []].flat().filter((a): a is string => typeof a === 'string');
const scopesOf = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);

/** The app of a token: its client for a token from a sign-in, the recorded one for an exchanged token (none recorded: none). */
const appOf = (clientId: string, act: Actor | undefined, recorded: unknown) => (act ? text(recorded) : clientId);

/**
 * A verified RFC 9068 JWT access token as a subject token. oidc-provider writes
 * the client id as `sub` when there is no person (client_credentials).
 */
export function subjectFromJwtClaims(claims: Record<string, unknown>): SubjectToken {
  const { sub, client_id: clientId, exp } = claims;
  if (typeof sub !== 'string' || typeof clientId !== 'string' || typeof exp !== 'number') refuse('invalid_request', 'subject token lacks sub, client_id or exp');
  const act = readActor(claims.act);
  return {
    accountId: sub === clientId ? undefined : (sub as string),
    clientId: clientId as string,
    app: appOf(clientId as string, act, claims[APP_CLAIM]),
    audiences: audiencesOf(claims.aud),
    scopes: scopesOf(claims.scope),
    exp: exp as number,
    act,
    jkt: text((claims.cnf as Record<string, unknown> | undefined)?.jkt),
    // a person's JWT names its grant (oidc/structured-tokens.ts): the grant must still be in force
    grantId: text(claims.grant_id),
  };
}

/** A stored (opaque) access token, as oidc-provider's AccessToken model holds it. */
export function subjectFromStoredToken(token: {
  accountId?: unknown; clientId?: unknown; grantId?: unknown; aud?: unknown; scope?: unknown; exp?: unknown; extra?: unknown; jkt?: unknown;
}): SubjectToken {
  if (typeof token.clientId !== 'string' || typeof token.exp !== 'number') refuse('invalid_request', 'subject token is invalid');
  const extra = token.extra as Record<string, unknown> | undefined;
  const act = readActor(extra?.act);
  return {
    accountId: text(token.accountId),
    clientId: token.clientId as string,
    app: appOf(token.clientId as string, act, extra?.[APP_CLAIM]),
    grantId: text(token.grantId),
    audiences: audiencesOf(token.aud),
    scopes: scopesOf(token.scope),
    exp: token.exp as number,
    act,
    jkt: text(token.jkt),
  };
}

/** The client asking, with the admin's decisions about it. */
export interface ExchangingClient {
  clientId: string;
  /** the APIs it may get tokens for */
  resources: string[];
  /** its allowed scopes; empty means every scope of its APIs */
  scopes: string[];
  /** registered itself (RFC 7591) */
  dynamic?: boolean;
}

/**
 * Whether the client is one of the subject token's API's own credentials: an
 * introspector of an API the token was issued for (the same list that lets it
 * read those tokens at /token/introspection).
 */
export function isSubjectApiCredential(clientId: string, subjectApis: (ApiRecord | null)[]): boolean {
  return subjectApis.some((api) => api?.introspectors.includes(clientId) ?? false);
}

/** The management API (src/admin): its tokens change Gatehouse itself, so no exchange ever makes one. */
export const isManagementApi = (identifier: string, issuer: string) => identifier === adminApiOf(issuer).identifier;

/**
 * RFC 9449 for the subject token: a DPoP-bound token is only as good as a
 * proof of its key. Exchanging it without one would turn a stolen bound token
 * into a bearer token (or one bound to the thief's key), so the exchange
 * request must carry a proof of that same key, and the new token is bound to
 * it (the door binds every token to the request's proof).
 */
export function checkSubjectBinding(subjectJkt: string | undefined, proofJkt: string | undefined): void {
  if (!subjectJkt) return;
  if (!proofJkt) refuse('invalid_request', "the subject token is DPoP-bound: the exchange needs a DPoP proof of the subject token's key");
  if (proofJkt !== subjectJkt) refuse('invalid_dpop_proof', "the DPoP proof is not of the subject token's key");
}

/** What decides the new token's scopes; every list holds scopes of the target API. */
export interface ScopeEvidence {
  /** the scopes this client may get at the target API (scopesForClient) */
  allowed: string[];
  /** the scopes the person granted the app at the target API, in a grant still in force; undefined: no such grant */
  granted: string[] | undefined;
  /** when the target is the subject token's own (only) API: the subject token's scopes */
  subjectScopes?: string[];
}

/**
 * The new token's scopes. A scope belongs to an API: `admin:write` of one API
 * says nothing about another API's `admin:write`, so the subject token's scope
 * names never count at a different API. A scope of the target API is
 * exchangeable when
 * - the exchanging client may get it there (the admin's decision about the
 *   calling API), and
 * - the person granted it at the target API to the app they signed in to (the
 *   consent screen listed that API), in a grant still in force: the evidence of
 *   consent is the person's, per API, and an exchange never gives a downstream
 *   API more than the person let the app have there. Only that app's grant
 *   counts (consent is given to an app, another app's must not widen it), and a
 *   withdrawn consent stops new exchanges. No grant: invalid_scope;
 * - and, when the target is the subject token's own API, the subject token
 *   carries it: an exchange to the same API only narrows (RFC 8693 §1.1's
 *   down-scoping).
 * Without `scope`, the new token gets every exchangeable scope, in the target
 * API's order: what RFC 8693 users expect (the person's authority carried over,
 * as far as policy allows; RFC 6749 §3.3's default), where a token with no
 * scope would be useless to the API and hide a misconfiguration. None
 * exchangeable: invalid_scope, as RFC 6749 §3.3 says for a default that cannot
 * be served.
 */
export function exchangedScopes(requested: string | undefined, evidence: ScopeEvidence): string[] {
  const { allowed, granted, subjectScopes } = evidence;
  if (!granted) return refuse('invalid_scope', 'the person has no grant in force for the app they signed in to: nothing to exchange');
  const asked = requested === undefined ? [] : requested.split(' ').filter(Boolean);
  if (asked.length === 0) {
    const scopes = allowed.filter((s) => granted.includes(s) && (!subjectScopes || subjectScopes.includes(s)));
    if (scopes.length === 0) refuse('invalid_scope', 'no scope of the target API to exchange for: the person granted the app none there that this client may get');
    return scopes;
  }
  for (const scope of asked) {
    if (!allowed.includes(scope)) refuse('invalid_scope', `scope ${scope} is not one this client may get at the target API`);
    if (!granted.includes(scope)) refuse('invalid_scope', `scope ${scope} was not granted by the person to the app at the target API`);
    if (subjectScopes && !subjectScopes.includes(scope)) refuse('invalid_scope', `scope ${scope} is wider than the subject token's scopes`);
  }
  return [...new Set(asked)];
}

/** What an allowed exchange issues. */
export interface ExchangeDecision {
  /** the person: the new token's `sub` */
  accountId: string;
  /** the app whose grant allowed it: the new token's APP_CLAIM */
  app: string;
  scopes: string[];
  /** seconds: the target API's lifetime, cut to what is left of the subject token's */
  expiresIn: number;
  act: Actor;
}

/**
 * Decides an exchange, in the order the refusals are checked: the subject
 * token (expired, no person, chain too long, not for an API: invalid_request),
 * the client (not the subject API's credential: unauthorized_client), the
 * subject token's DPoP binding (invalid_request without a proof,
 * invalid_dpop_proof with one of another key), the target (the management
 * API, unknown or not the client's: invalid_target), the scopes
 * (invalid_scope).
 */
export function decideExchange(input: {
  client: ExchangingClient;
  subject: SubjectToken;
  /** the APIs of the subject token's audiences, null where no such API is registered */
  subjectApis: (ApiRecord | null)[];
  /** the target API, null when none is registered under that identifier */
  target: ApiRecord | null;
  /** the `scope` parameter, if any */
  requestedScope?: string;
  /** the scopes of the target API the person granted the app (subject.app), from a grant in force; undefined when there is none */
  granted: string[] | undefined;
  /** the thumbprint of the key of the request's DPoP proof, if any */
  proofJkt?: string;
  /** the issuer: the management API's identifier follows from it */
  issuer: string;
  /** seconds since the epoch */
  now: number;
}): ExchangeDecision {
  const { client, subject, subjectApis, target, now } = input;
  if (subject.exp <= now) refuse('invalid_request', 'subject token has expired');
  if (!subject.accountId) refuse('invalid_request', 'subject token has no subject person');
  if (chainLength(subject.act) >= MAX_EXCHANGE_CHAIN) refuse('invalid_request', CHAIN_TOO_LONG);
  if (!subjectApis.some(Boolean)) refuse('invalid_request', 'subject token was not issued for a registered API');
  if (!isSubjectApiCredential(client.clientId, subjectApis)) {
    refuse('unauthorized_client', "this client may not exchange tokens issued for the subject token's API: it is not one of that API's credentials");
  }
  checkSubjectBinding(subject.jkt, input.proofJkt);
  if (target && isManagementApi(target.identifier, input.issuer)) refuse('invalid_target', MANAGEMENT_API_REFUSED);
  const allowed = scopesForClient(target, client);
  if (!target || !allowed) return refuse('invalid_target', TARGET_REFUSED);
  const sameApi = subject.audiences.length === 1 && subject.audiences[0] === target.identifier;
  const scopes = exchangedScopes(input.requestedScope, { allowed, granted: subject.app ? input.granted : undefined, subjectScopes: sameApi ? subject.scopes : undefined });
  return {
    accountId: subject.accountId as string,
    app: subject.app as string,
    scopes,
    expiresIn: Math.min(target.accessTokenTtl, subject.exp - now),
    act: { sub: client.clientId, ...(subject.act ? { act: subject.act } : {}) },
  };
}
