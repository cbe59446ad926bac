/**
 * Protocol steps of the conformance plans, as raw HTTP (no client library in between,
 * so every error the plans probe can be sent), all through `op.fetch`.
 *
 * API:
 * - `discovery(op)`: the parsed `/.well-known/openid-configuration` (cached per issuer).
 * - `jwks(op)`: the JWK Set at discovery's `jwks_uri`.
 * - `tokenRequest(op, client, body, { auth })`: POST to the token endpoint with
 *   `client_secret_basic` (default: the client's method), `client_secret_post` or `none`;
 *   returns `{ status, headers, body }` (body parsed as JSON).
 * - `redeemCode(op, client, code, extra?)`: the authorization_code grant for the client's
 *   default redirect URI (extra: e.g. `{ code_verifier }`).
 * - `userinfo(op, accessToken, how)`: GET (header), POST with the token in the header,
 *   or POST with it in the body; returns `{ status, headers, contentType, body }`
 *   (JSON parsed, a JWT left as a string).
 * - `introspect(op, client, token)`: RFC 7662 with the client's credentials.
 * - `validateIdToken(op, idToken, expected)`: verifies the signature against the JWKS and
 *   the checks the suite makes (iss, aud, azp, exp, iat, nonce, at_hash, c_hash, auth_time
 *   when max_age was asked, sub); throws with the failed check, returns `{ header, claims }`.
 * - `halfHash(alg, value)`: at_hash / c_hash of a value for a JWS alg.
 * - `pkcePair()`, `randomValue()`: PKCE S256 verifier/challenge, random state/nonce.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { ConformanceClient, ConformanceOp } from './server.js';

type OpLike = Pick<ConformanceOp, 'issuer' | 'fetch'>;
type ClientLike = Pick<ConformanceClient, 'clientId' | 'clientSecret' | 'redirectUri'> & { authMethod?: string };

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

const discovered = new Map<string, Record<string, any>>();

export async function discovery(op: OpLike): Promise<Record<string, any>> {
  const cached = discovered.get(op.issuer);
  if (cached) return cached;
  const res = await op.fetch(`${op.issuer}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`discovery answered ${res.status}`);
  const doc = (await res.json()) as Record<string, any>;
  discovered.set(op.issuer, doc);
  return doc;
}

export async function jwks(op: OpLike): Promise<{ keys: JWK[] }> {
  const res = await op.fetch((await discovery(op)).jwks_uri);
  if (res.status !== 200) throw new Error(`jwks_uri answered ${res.status}`);
  return (await res.json()) as { keys: JWK[] };
}

async function parsed(res: Response): Promise<HttpResult> {
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a JWT or a page
  }
  return { status: res.status, headers: res.headers, body };
}

export type TokenAuth = 'client_secret_basic' | 'client_secret_post' | 'none';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export async function tokenRequest(op: OpLike, client: ClientLike, body: Record<string, string>, options: { auth?: TokenAuth } = {}): Promise<HttpResult> {
  const auth = options.auth ?? ((client.authMethod as TokenAuth | undefined) ?? 'client_secret_basic');
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const form = { ...body };
  if (auth === 'client_secret_basic') headers.authorization = basic(client.clientId, client.clientSecret);
  else if (auth === 'client_secret_post') Object.assign(form, { client_id: client.clientId, client_secret: client.clientSecret });
  else form.client_id = client.clientId;
  const res = await op.fetch((await discovery(op)).token_endpoint, { method: 'POST', headers, body: new URLSearchParams(form) });
  return parsed(res);
}

export function redeemCode(op: OpLike, client: ClientLike, code: string, extra: Record<string, string> = {}, options: { auth?: TokenAuth } = {}) {
  return tokenRequest(op, client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, ...extra }, options);
}

export type UserinfoMethod = 'get' | 'post-header' | 'post-body';

export async function userinfo(op: OpLike, accessToken: string, how: UserinfoMethod = 'get'): Promise<HttpResult & { contentType: string }> {
  const endpoint = (await discovery(op)).userinfo_endpoint;
  const init: RequestInit =
    how === 'get' ? { headers: { authorization: `Bearer ${accessToken}` } }
      : how === 'post-header' ? { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } }
        : { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ access_token: accessToken }) };
  const res = await op.fetch(endpoint, init);
  return { ...(await parsed(res)), contentType: res.headers.get('content-type') ?? '' };
}

export async function introspect(op: OpLike, client: ClientLike, token: string): Promise<HttpResult> {
  const res = await op.fetch((await discovery(op)).introspection_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
    body: new URLSearchParams({ token }),
  });
  return parsed(res);
}

const HASHES: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

/** OIDC Core 3.1.3.6 / 3.3.2.11: the left half of the hash the JWS alg uses, base64url. */
export function halfHash(alg: string, value: string): string {
  const hash = alg === 'EdDSA' || alg === 'Ed25519' ? 'sha512' : HASHES[alg.slice(-3)];
  if (!hash) throw new Error(`no hash for alg ${alg}`);
  const digest = createHash(hash).update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export interface IdTokenExpectations {
  clientId: string;
  /** the nonce sent; undefined: the ID token must carry none */
  nonce?: string;
  accessToken?: string;
  code?: string;
  /** max_age (or auth_time as an essential claim) was requested: auth_time is required */
  requireAuthTime?: boolean;
  /** allowed clock skew, seconds (default 300) */
  skew?: number;
}

function check(ok: unknown, what: string): void {
  if (!ok) throw new Error(`ID token check failed: ${what}`);
}

function checkClaims(claims: JWTPayload & Record<string, any>, header: ProtectedHeaderParameters, issuer: string, e: IdTokenExpectations): void {
  const now = Math.floor(Date.now() / 1000);
  const skew = e.skew ?? 300;
  check(claims.iss === issuer, `iss ${claims.iss} is the issuer ${issuer}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  check(aud.includes(e.clientId), `aud ${JSON.stringify(claims.aud)} contains ${e.clientId}`);
  if (aud.length > 1 || claims.azp !== undefined) check(claims.azp === e.clientId, `azp ${claims.azp} is ${e.clientId}`);
  check(typeof claims.exp === 'number' && claims.exp > now - skew, `exp ${claims.exp} is in the future`);
  check(typeof claims.iat === 'number' && Math.abs(claims.iat - now) <= skew, `iat ${claims.iat} is now`);
  check(claims.iat! < claims.exp!, 'iat is before exp');
  check(typeof claims.sub === 'string' && claims.sub.length > 0 && claims.sub.length <= 255, `sub ${claims.sub} is a string of 1 to 255 characters`);
  check(claims.nonce === e.nonce, `nonce ${claims.nonce} is ${e.nonce}`);
  if (claims.at_hash !== undefined && e.accessToken !== undefined) check(claims.at_hash === halfHash(header.alg!, e.accessToken), 'at_hash matches the access token');
  if (claims.c_hash !== undefined && e.code !== undefined) check(claims.c_hash === halfHash(header.alg!, e.code), 'c_hash matches the code');
  if (e.requireAuthTime || claims.auth_time !== undefined) {
    check(typeof claims.auth_time === 'number', 'auth_time is present (a number)');
    check(claims.auth_time <= now + skew, `auth_time ${claims.auth_time} is not in the future`);
  }
}

export async function validateIdToken(op: OpLike, idToken: string, expected: IdTokenExpectations) {
  const doc = await discovery(op);
  const keySet = createLocalJWKSet(await jwks(op));
  const { payload, protectedHeader } = await jwtVerify(idToken, keySet, { algorithms: doc.id_token_signing_alg_values_supported.filter((a: string) => a !== 'none') });
  check(protectedHeader.alg !== 'none', 'alg is not none');
  checkClaims(payload as JWTPayload & Record<string, any>, protectedHeader, op.issuer, expected);
  return { header: protectedHeader, claims: payload as JWTPayload & Record<string, any> };
}

export const randomValue = (bytes = 16) => randomBytes(bytes).toString('base64url');

export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomValue(32);
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}
