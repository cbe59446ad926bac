/**
 * What the FAPI 2.0 Security Profile plan's client does, as raw HTTP with jose, so that
 * every negative module can change exactly one thing: private_key_jwt client assertions,
 * DPoP proofs (RFC 9449), pushed authorization requests (RFC 9126), the token endpoint,
 * and the protected resource (Gatehouse's UserInfo, which honours DPoP-bound tokens).
 *
 * The variant: client_auth_type=private_key_jwt, sender_constrain=dpop,
 * openid=openid_connect, fapi_profile=plain_fapi, fapi_request_method=unsigned,
 * fapi_response_mode=plain_response.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { discovery, pkcePair, randomValue, type ClientSpec, type ConformanceClient, type ConformanceOp, type HttpResult } from '../support/index.js';

export interface KeyPair {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface FapiClient extends ConformanceClient {
  key: KeyPair;
}

export async function keyPair(alg: 'ES256' | 'PS256' | 'EdDSA' = 'ES256', kid?: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const publicJwk = await exportJWK(publicKey);
  if (kid) Object.assign(publicJwk, { kid, alg, use: 'sig' });
  return { alg, privateKey, publicJwk };
}

/** `clients create --profile fapi2 --auth-method private_key_jwt --jwks-file <its public key>`. */
export function fapiClientSpec(name: string, key: KeyPair): ClientSpec {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-fapi2-'));
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [key.publicJwk] }));
  return { name, authMethod: 'private_key_jwt', grantTypes: ['authorization_code', 'refresh_token'], extraArgs: ['--profile', 'fapi2', '--jwks-file', file] };
}

type OpLike = Pick<ConformanceOp, 'issuer' | 'fetch'>;

export const now = () => Math.floor(Date.now() / 1000);

export interface AssertionOptions {
  /** default: the issuer */
  aud?: unknown;
  /** default: the client's key's alg */
  alg?: string;
  /** sign with this key instead of the client's */
  key?: KeyPair;
  /** claims to leave out */
  omit?: string[];
  /** claims to set or override */
  claims?: Record<string, unknown>;
  /** iss and sub (default: the client's id) */
  clientId?: string;
}

/** A private_key_jwt client assertion (RFC 7523), as the suite's CreateJWTClientAuthenticationAssertionWithIssAud. */
export async function clientAssertion(op: OpLike, client: FapiClient, o: AssertionOptions = {}): Promise<string> {
  const id = o.clientId ?? client.clientId;
  const claims: Record<string, unknown> = { iss: id, sub: id, aud: o.aud ?? op.issuer, jti: randomValue(), iat: now(), exp: now() + 60, ...o.claims };
  for (const k of o.omit ?? []) delete claims[k];
  const key = o.key ?? client.key;
  const header: Record<string, unknown> = { alg: o.alg ?? key.alg, typ: 'JWT' };
  if (key.publicJwk.kid) header.kid = key.publicJwk.kid;
  return new SignJWT(claims as never).setProtectedHeader(header as never).sign(key.privateKey);
}

export async function clientAuth(op: OpLike, client: FapiClient, o: AssertionOptions | false = {}): Promise<Record<string, string>> {
  if (o === false) return { client_id: client.clientId };
  return {
    client_id: o.clientId ?? client.clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await clientAssertion(op, client, o),
  };
}

export interface ProofOptions {
  /** change the claims (after htm, htu, iat, jti, ath are set) */
  claims?: (c: Record<string, unknown>) => void;
  /** change the header (after typ, alg, jwk are set) */
  header?: (h: Record<string, unknown>) => void;
  /** sign with this key (the header's jwk stays the proof key's unless header changes it) */
  signWith?: KeyPair;
}

export const ath = (accessToken: string) => createHash('sha256').update(accessToken).digest('base64url');

/** A DPoP proof JWT (RFC 9449 §4.2) for htm/htu, with `ath` when an access token is given. */
export async function dpopProof(key: KeyPair, htm: string, htu: string, accessToken?: string, o: ProofOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = { jti: randomValue(), htm, htu, iat: now() };
  if (accessToken) claims.ath = ath(accessToken);
  o.claims?.(claims);
  const header: Record<string, unknown> = { typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk };
  o.header?.(header);
  return new SignJWT(claims as never).setProtectedHeader(header as never).sign((o.signWith ?? key).privateKey);
}

export const thumbprint = (key: KeyPair) => calculateJwkThumbprint(key.publicJwk);

async function parsed(res: Response): Promise<HttpResult & { contentType: string }> {
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body, contentType: res.headers.get('content-type') ?? '' };
}

export interface PreparedFapiRequest {
  /** what is pushed (PAR form, without client authentication) */
  params: Record<string, string>;
  state?: string;
  nonce?: string;
  verifier?: string;
}

/** The suite's authorization request: client_id, redirect_uri, scope, state, nonce, response_type=code, PKCE S256. */
export async function fapiRequest(client: ConformanceClient, o: { scope?: string; extra?: Record<string, string | null>; pkce?: boolean } = {}): Promise<PreparedFapiRequest> {
  const state = randomValue();
  const nonce = randomValue();
  const params: Record<string, string> = { client_id: client.clientId, redirect_uri: client.redirectUri, scope: o.scope ?? 'openid', state, nonce, response_type: 'code' };
  let verifier: string | undefined;
  if (o.pkce !== false) {
    const pair = await pkcePair();
    verifier = pair.verifier;
    Object.assign(params, { code_challenge: pair.challenge, code_challenge_method: 'S256' });
  }
  for (const [k, v] of Object.entries(o.extra ?? {})) {
    if (v === null) delete params[k];
    else params[k] = v;
  }
  return { params, state: params.state, nonce: params.nonce, verifier };
}

export interface ParOptions {
  auth?: AssertionOptions | false;
  /** a DPoP proof for the PAR endpoint with this key (dpop_jkt binding) */
  dpop?: KeyPair;
  dpopOptions?: ProofOptions;
  method?: string;
}

/** POST to pushed_authorization_request_endpoint with the params and a client assertion. */
export async function par(op: OpLike, client: FapiClient, params: Record<string, string>, o: ParOptions = {}) {
  const endpoint = (await discovery(op)).pushed_authorization_request_endpoint as string;
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const method = o.method ?? 'POST';
  if (o.dpop) headers.dpop = await dpopProof(o.dpop, method, endpoint, undefined, o.dpopOptions);
  const body = new URLSearchParams({ ...params, ...(await clientAuth(op, client, o.auth)) });
  return parsed(await op.fetch(endpoint, { method, headers, body }));
}

export interface TokenOptions {
  auth?: AssertionOptions | false;
  /** DPoP proof key; null: no DPoP header */
  dpop?: KeyPair | null;
  dpopOptions?: ProofOptions;
}

export async function token(op: OpLike, client: FapiClient, body: Record<string, string>, o: TokenOptions = {}) {
  const endpoint = (await discovery(op)).token_endpoint as string;
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (o.dpop) headers.dpop = await dpopProof(o.dpop, 'POST', endpoint, undefined, o.dpopOptions);
  const form = new URLSearchParams({ ...body, ...(await clientAuth(op, client, o.auth)) });
  return parsed(await op.fetch(endpoint, { method: 'POST', headers, body: form }));
}

export interface ResourceOptions {
  /** Authorization scheme (default DPoP) */
  scheme?: string;
  /** DPoP proof key; null: no DPoP header */
  dpop?: KeyPair | null;
  dpopOptions?: ProofOptions;
  /** the DPoP header value(s) as given, instead of a proof */
  rawDpop?: string | string[];
  /** header name for the proof (default DPoP) */
  dpopHeaderName?: string;
  /** htm/htu override */
  htm?: string;
  htu?: string;
}

/** The protected resource: GET userinfo_endpoint with `Authorization: DPoP <token>` and a proof. */
export async function resource(op: OpLike, accessToken: string, key: KeyPair | null, o: ResourceOptions = {}) {
  const endpoint = (await discovery(op)).userinfo_endpoint as string;
  const headers = new Headers({ authorization: `${o.scheme ?? 'DPoP'} ${accessToken}` });
  const proofKey = o.dpop === undefined ? key : o.dpop;
  const name = o.dpopHeaderName ?? 'DPoP';
  if (o.rawDpop !== undefined) {
    for (const v of Array.isArray(o.rawDpop) ? o.rawDpop : [o.rawDpop]) headers.append(name, v);
  } else if (proofKey) {
    headers.set(name, await dpopProof(proofKey, o.htm ?? 'GET', o.htu ?? endpoint, accessToken, o.dpopOptions));
  }
  return parsed(await op.fetch(endpoint, { headers }));
}

export const newJti = () => randomUUID();
