/**
 * The conformance suite's standard authorization code flow, in steps the modules combine.
 *
 * API:
 * - `authorizationParams(client, options)`: the suite's authorization request —
 *   client_id, redirect_uri, response_type=code, scope (default `openid`), state, nonce
 *   (`nonce: false` leaves it out), optional PKCE (`pkce: true`), response_mode, then
 *   `extra` (a value of `null` removes a parameter). Returns the params plus the state,
 *   nonce and PKCE verifier to check against.
 * - `expectCode(outcome, request, op)`: asserts the browser reached the redirect URI with
 *   a code, the same state and (when present) `iss` = the issuer (RFC 9207); returns the code.
 * - `expectError(outcome, request, error)`: asserts an error response at the redirect
 *   URI (with the state) and no code.
 * - `codeFlow(op, session, options)`: authorize in the browser → expectCode → redeem the
 *   code (Basic auth unless `auth`) → expects 200, token_type Bearer, an access token and
 *   an ID token that passes `validateIdToken` (with `requireAuthTime` when max_age is
 *   sent). Returns every intermediate value for further assertions.
 */
import { expect } from '@jest/globals';
import type { AuthorizationOutcome, AuthorizationRequest, BrowserSession, RedirectOutcome } from './browser.js';
import { pkcePair, randomValue, redeemCode, validateIdToken, type HttpResult, type TokenAuth } from './protocol.js';
import type { ConformanceClient, ConformanceOp } from './server.js';

export interface RequestOptions {
  scope?: string;
  nonce?: boolean;
  pkce?: boolean;
  responseMode?: 'query' | 'fragment' | 'form_post';
  /** added last; null removes a parameter */
  extra?: Record<string, string | null>;
}

export interface PreparedRequest {
  params: Record<string, string>;
  state: string;
  nonce?: string;
  verifier?: string;
}

export async function authorizationParams(client: Pick<ConformanceClient, 'clientId' | 'redirectUri'>, options: RequestOptions = {}): Promise<PreparedRequest> {
  const state = randomValue();
  const nonce = options.nonce === false ? undefined : randomValue();
  const params: Record<string, string> = {
    client_id: client.clientId, redirect_uri: client.redirectUri, response_type: 'code', scope: options.scope ?? 'openid', state,
  };
  if (nonce) params.nonce = nonce;
  let verifier: string | undefined;
  if (options.pkce) {
    const pair = await pkcePair();
    verifier = pair.verifier;
    Object.assign(params, { code_challenge: pair.challenge, code_challenge_method: 'S256' });
  }
  if (options.responseMode) params.response_mode = options.responseMode;
  for (const [k, v] of Object.entries(options.extra ?? {})) {
    if (v === null) delete params[k];
    else params[k] = v;
  }
  return { params, state, nonce, verifier };
}

function describeOutcome(outcome: AuthorizationOutcome): string {
  return outcome.kind === 'page'
    ? `a page (${outcome.status}) "${outcome.heading}" at ${outcome.url}: ${outcome.text.slice(0, 300)}`
    : `a redirect to ${outcome.url.origin}${outcome.url.pathname} (${outcome.via}) with ${outcome.params}`;
}

export function expectRedirect(outcome: AuthorizationOutcome): asserts outcome is RedirectOutcome {
  if (outcome.kind !== 'redirect') throw new Error(`expected a redirect to the client, got ${describeOutcome(outcome)}`);
}

export function expectCode(outcome: AuthorizationOutcome, request: PreparedRequest, op: Pick<ConformanceOp, 'issuer'>): string {
  expectRedirect(outcome);
  const code = outcome.params.get('code');
  if (!code) throw new Error(`expected a code, got ${describeOutcome(outcome)}`);
  expect(outcome.params.get('state')).toBe(request.state);
  if (outcome.params.has('iss')) expect(outcome.params.get('iss')).toBe(op.issuer);
  return code;
}

export function expectError(outcome: AuthorizationOutcome, request: Pick<PreparedRequest, 'state'>, error: string | RegExp): URLSearchParams {
  expectRedirect(outcome);
  expect(outcome.params.get('code')).toBeNull();
  expect(outcome.params.get('error')).toMatch(error instanceof RegExp ? error : new RegExp(`^${error}$`));
  expect(outcome.params.get('state')).toBe(request.state);
  return outcome.params;
}

export interface CodeFlowOptions extends RequestOptions {
  client: ConformanceClient;
  auth?: TokenAuth;
  /** how the browser sends it and answers consent */
  browser?: Omit<AuthorizationRequest, 'params'>;
}

export interface CodeFlowResult {
  request: PreparedRequest;
  outcome: RedirectOutcome;
  code: string;
  token: HttpResult;
  accessToken: string;
  idToken: string;
  header: Record<string, any>;
  claims: Record<string, any>;
}

export async function codeFlow(op: ConformanceOp, session: BrowserSession, options: CodeFlowOptions): Promise<CodeFlowResult> {
  const request = await authorizationParams(options.client, options);
  const outcome = await session.authorize({ ...options.browser, params: request.params });
  const code = expectCode(outcome, request, op);
  expectRedirect(outcome);
  const token = await redeemCode(op, options.client, code, request.verifier ? { code_verifier: request.verifier } : {}, { auth: options.auth });
  if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}: ${JSON.stringify(token.body)}`);
  expect(token.body.token_type).toMatch(/^bearer$/i);
  expect(typeof token.body.access_token).toBe('string');
  expect(typeof token.body.id_token).toBe('string');
  const { header, claims } = await validateIdToken(op, token.body.id_token, {
    clientId: options.client.clientId, nonce: request.nonce, accessToken: token.body.access_token, code,
    requireAuthTime: 'max_age' in request.params,
  });
  return { request, outcome, code, token, accessToken: token.body.access_token, idToken: token.body.id_token, header, claims };
}
