import type { ApiRecord } from '../storage/apis.js';
import { scopesForClient } from './apis.js';

/**
 * The rules of RFC 8693 token exchange, written once: an API that received a
 * person's access token exchanges it for a token to a downstream API, with the
 * person as `sub` and the calling API in `act`. Admin decisions only, no
 * tables of their own:
 * - the exchanging client must be one of the subject token's API's own
 *   credentials (its `introspectors`);
 * - the target API must be one the client may get tokens for anyway
 *   (`scopesForClient`), and the scopes no wider than the subject token's nor
 *   than what the client may get there;
 * - the new token never outlives the subject token.
 * Every function here is pure; oidc/token-exchange.ts reads the tokens and
 * turns a refusal into oidc-provider's error.
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */

/** RFC 8693 §3: the only token type Gatehouse takes and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export type ExchangeErrorCode = 'invalid_request' | 'unauthorized_client' | 'invalid_target' | 'invalid_scope';

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
  /** the APIs it was issued for (RFC 8707 identifiers) */
  audiences: string[];
  scopes: string[];
  /** seconds since the epoch */
  exp: number;
  /** set when the token itself came from an exchange */
  act?: Actor;
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

/** An `act` claim as Gatehouse writes it, or undefined when there is none. */
export function readActor(value: unknown, depth = 0): Actor | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof value !== 'object' || Array.isArray(value) || typeof v.sub !== 'string' || depth > 32) refuse('invalid_request', 'subject token has a malformed act claim');
  const inner = readActor(v.act, depth + 1);
  return { sub: v.sub as string, ...(inner ? { act: inner } : {}) };
}

const audiencesOf = (aud: unknown) => [aud ?? []].flat().filter((a): a is string => typeof a === 'string');
const scopesOf = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

/**
 * A verified RFC 9068 JWT access token as a subject token. oidc-provider writes
 * the client id as `sub` when there is no person (client_credentials).
 */
export function subjectFromJwtClaims(claims: Record<string, unknown>): SubjectToken {
  const { sub, client_id: clientId, exp } = claims;
  if (typeof sub !== 'string' || typeof clientId !== 'string' || typeof exp !== 'number') refuse('invalid_request', 'subject token lacks sub, client_id or exp');
  return {
    accountId: sub === clientId ? undefined : (sub as string),
    clientId: clientId as string,
    audiences: audiencesOf(claims.aud),
    scopes: scopesOf(claims.scope),
    exp: exp as number,
    act: readActor(claims.act),
  };
}

/** A stored (opaque) access token, as oidc-provider's AccessToken model holds it. */
export function subjectFromStoredToken(token: { accountId?: unknown; clientId?: unknown; aud?: unknown; scope?: unknown; exp?: unknown; extra?: unknown }): SubjectToken {
  if (typeof token.clientId !== 'string' || typeof token.exp !== 'number') refuse('invalid_request', 'subject token is invalid');
  return {
    accountId: typeof token.accountId === 'string' && token.accountId ? token.accountId : undefined,
    clientId: token.clientId as string,
    audiences: audiencesOf(token.aud),
    scopes: scopesOf(token.scope),
    exp: token.exp as number,
    act: readActor((token.extra as Record<string, unknown> | undefined)?.act),
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

/** What the new token gets: the requested scopes, or by default all the subject token's that the target allows. */
export function exchangedScopes(requested: string | undefined, subjectScopes: string[], allowedAtTarget: string[]): string[] {
  const asked = requested === undefined ? undefined : requested.split(' ').filter(Boolean);
  if (asked === undefined || asked.length === 0) return subjectScopes.filter((s) => allowedAtTarget.includes(s));
  for (const scope of asked) {
    if (!subjectScopes.includes(scope)) refuse('invalid_scope', `scope ${scope} is wider than the subject token's scopes`);
    if (!allowedAtTarget.includes(scope)) refuse('invalid_scope', `scope ${scope} is not one this client may get at the target API`);
  }
  return [...new Set(asked)];
}

/** What an allowed exchange issues. */
export interface ExchangeDecision {
  /** the person: the new token's `sub` */
  accountId: string;
  scopes: string[];
  /** seconds: the target API's lifetime, cut to what is left of the subject token's */
  expiresIn: number;
  act: Actor;
}

/**
 * Decides an exchange, in the order the refusals are checked: the subject
 * token (expired, no person, not for an API: invalid_request), the client
 * (not the subject API's credential: unauthorized_client), the target
 * (unknown or not the client's: invalid_target), the scopes (invalid_scope).
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
  /** seconds since the epoch */
  now: number;
}): ExchangeDecision {
  const { client, subject, subjectApis, target, now } = input;
  if (subject.exp <= now) refuse('invalid_request', 'subject token has expired');
  if (!subject.accountId) refuse('invalid_request', 'subject token has no subject person');
  if (!subjectApis.some(Boolean)) refuse('invalid_request', 'subject token was not issued for a registered API');
  if (!isSubjectApiCredential(client.clientId, subjectApis)) {
    refuse('unauthorized_client', "this client may not exchange tokens issued for the subject token's API: it is not one of that API's credentials");
  }
  const allowed = scopesForClient(target, client);
  if (!target || !allowed) return refuse('invalid_target', TARGET_REFUSED);
  return {
    accountId: subject.accountId as string,
    scopes: exchangedScopes(input.requestedScope, subject.scopes, allowed),
    expiresIn: Math.min(target.accessTokenTtl, subject.exp - now),
    act: { sub: client.clientId, ...(subject.act ? { act: subject.act } : {}) },
  };
}
