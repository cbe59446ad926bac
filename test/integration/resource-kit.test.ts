import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import * as oidc from 'openid-client';
import {
  SignJWT,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type CryptoKey,
  type JWK,
} from 'jose';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { ROOT, freePort, runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually, relyingParty } from '../support/gatehouse.js';
import {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  redisReplayStore,
  requireToken,
  type ReplayStore,
  type TokenAuth,
} from '../../src/resource-kit/index.js';
import { Redis } from 'ioredis';
import { createKeySet, KeysUnavailableError } from '../../src/resource-kit/key-set.js';

/**
 * The resource-server kit (src/resource) mounted in a Koa API in this process,
 * against a real Gatehouse (node dist/main.js) on SQLite. The kit keeps no
 * storage, so one database kind is enough. openid-client is the client.
 */

const ORDERS = 'https://orders.example.com';
const INVENTORY = 'https://inventory.example.com';
const EXAMPLE_API = 'https://api.example.com';
/** where requireToken's challenges send clients by default: RFC 9728 §3.1 for ORDERS (no path) */
const ORDERS_METADATA = 'https://orders.example.com/.well-known/oauth-protected-resource';
const ORDERS_RM = `resource_metadata="${ORDERS_METADATA}"`;
/** an API identifier with a path, whose metadata is path-inserted */
const ITEMS = 'https://inventory.example.com/v1/items';
/** every DPoP algorithm the kit accepts, in its order */
const DPOP_ALGS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'];
/** the API's JWKS cooldown in these tests (jose's default is 30 s) */
const COOLDOWN_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

interface Answer {
  status: number;
  challenge: string | null;
  retryAfter: string | null;
  body: Record<string, any>;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    retryAfter: res.headers.get('retry-after'),
    body: text ? JSON.parse(text) : {},
  };
}

describe('resource-server kit against Gatehouse on sqlite', () => {
  let db: TestDatabase;
  let server: RunningServer;
  let issuer: string;
  let service: { clientId: string; clientSecret: string };
  let rp: oidc.Configuration;

  let api: Server;
  let apiUrl: string;
  /** JWKS requests made by the /things middleware, and when the last one was */
  let jwksFetches = 0;
  let lastJwksFetch = 0;
  /** moves the /things middleware's clock */
  let clockOffsetMs = 0;
  /** makes the /outage-* middlewares' JWKS fetches fail, as if the issuer were down */
  let issuerDown = false;
  const serverErrors: string[] = [];
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });

  const call = async (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    answer(await fetch(`${apiUrl}${path}`, { method, headers }));

  const token = async (resource = ORDERS, scope = 'orders:read') =>
    (await oidc.clientCredentialsGrant(rp, { resource, scope })).access_token;

  /** A token Gatehouse never issued: signed by a key it never had. */
  async function foreignToken(kid: string, claims: Record<string, unknown> = {}) {
    const { privateKey } = await generateKeyPair('ES256');
    return new SignJWT({ client_id: 'billing', scope: 'orders:read', jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .setIssuer(issuer)
      .setAudience(ORDERS)
      .setSubject('billing')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
  }

  /** A DPoP proof (RFC 9449 §4.2), correct unless told otherwise. */
  async function proof(
    key: { privateKey: CryptoKey; publicKey: CryptoKey },
    o: { accessToken: string; htu?: string; htm?: string; jti?: string; iat?: number; jwk?: JWK; typ?: string },
  ) {
    return new SignJWT({ htm: o.htm ?? 'GET', htu: o.htu ?? `${apiUrl}/things`, ath: sha256(o.accessToken), jti: o.jti ?? randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? (await exportJWK(key.publicKey)) })
      .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
      .sign(key.privateKey);
  }

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    createApi(db.url, ['--identifier', ORDERS, '--scope', 'orders:read', '--scope', 'orders:write', '--ttl', '300']);
    createApi(db.url, ['--identifier', INVENTORY, '--scope', 'inventory:read']);
    createApi(db.url, ['--identifier', EXAMPLE_API, '--scope', 'read:things']);
    service = createClient(db.url, [
      '--name', 'Billing', '--id', 'billing',
      '--resource', ORDERS, '--resource', INVENTORY, '--resource', EXAMPLE_API,
      '--scope', 'orders:read', '--scope', 'inventory:read', '--scope', 'read:things',
    ]);
    server = await startServer({ DATABASE_URL: db.url });
    issuer = server.url;
    rp = await relyingParty(issuer, service.clientId, service.clientSecret);

    const countingFetch: typeof fetch = async (input, init) => {
      jwksFetches++;
      lastJwksFetch = Date.now();
      return fetch(input, init);
    };
    const flakyFetch: typeof fetch = async (input, init) => {
      if (issuerDown) throw new TypeError('fetch failed');
      return fetch(input, init);
    };
    const show = (ctx: Koa.Context) => {
      ctx.body = { auth: ctx.state.auth as TokenAuth };
    };
    const router = new Router();
    router.all(
      '/things',
      requireToken({ issuer, audience: ORDERS, scopes: ['orders:read'], fetch: countingFetch, now: () => Date.now() + clockOffsetMs, jwksCooldownSeconds: COOLDOWN_MS / 1000 }),
      show,
    );
    router.get('/write', requireToken({ issuer, audience: ORDERS, scopes: ['orders:read', 'orders:write'] }), show);
    router.get('/outage-cold', requireToken({ issuer, audience: ORDERS, fetch: flakyFetch, jwksCooldownSeconds: 0 }), show);
    router.get('/outage-warm', requireToken({ issuer, audience: ORDERS, fetch: flakyFetch, jwksCooldownSeconds: 0 }), show);
    router.get('/custom-metadata', requireToken({ issuer, audience: ORDERS, resourceMetadataUrl: 'https://docs.example.com/"meta"' }), show);
    router.get('/no-metadata', requireToken({ issuer, audience: ORDERS, resourceMetadataUrl: false }), show);
    router.get('/items', requireToken({ issuer, audience: ITEMS }), show);
    router.get('/urn', requireToken({ issuer, audience: 'urn:example:orders' }), show);
    // two "workers" of one API behind one URL, taking requests in turn: with their own
    // replay stores (the default), or sharing one on Redis
    const inTurn = (a: Koa.Middleware, b: Koa.Middleware): Koa.Middleware => {
      let turn = 0;
      return (ctx, next) => ((turn++ % 2 === 0 ? a : b)(ctx, next));
    };
    const worker = (replayStore?: ReplayStore) => requireToken({ issuer, audience: ORDERS, replayStore }) as unknown as Koa.Middleware;
    router.get('/workers-own', inTurn(worker(), worker()), show);
    const shared = redisReplayStore(redis, `gatehouse-test:${randomUUID()}:`);
    router.get('/workers-shared', inTurn(worker(shared), worker(shared)), show);
    router.get('/introspected', requireToken({ issuer, audience: ORDERS, introspection: { clientId: service.clientId, clientSecret: service.clientSecret } }), show);
    router.get('/introspected-wrongly', requireToken({ issuer, audience: ORDERS, introspection: { clientId: service.clientId, clientSecret: 'wrong' } }), show);
    const app = new Koa();
    app.silent = true;
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        serverErrors.push(`${ctx.method} ${ctx.path}: ${String(err)}`);
        throw err;
      }
    });
    app.use(protectedResourceMetadata({
      issuer,
      resource: ORDERS,
      scopes: ['orders:read', 'orders:write'],
      resourceName: 'Orders',
      resourceDocumentation: 'https://orders.example.com/docs',
      resourcePolicyUri: 'https://orders.example.com/policy',
      resourceTosUri: 'https://orders.example.com/tos',
    }));
    app.use(protectedResourceMetadata({ issuer, resource: ITEMS, serveAtOrigin: false }));
    app.use(router.routes());
    api = app.listen(0, '127.0.0.1');
    await new Promise((r) => api.once('listening', r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    redis.disconnect();
    await new Promise((r) => api?.close(r));
    await server?.stop();
    await db?.drop();
  });

  it('accepts a valid token and puts its claims on ctx.state.auth, fetching the JWKS once', async () => {
    const access = await token();
    const first = await call('/things', { authorization: `Bearer ${access}` });
    expect(first.status).toBe(200);
    expect(first.body.auth).toEqual({
      token: access,
      claims: expect.objectContaining({ iss: issuer, aud: ORDERS, client_id: 'billing', sub: 'billing', scope: 'orders:read' }),
      scopes: ['orders:read'],
      clientId: 'billing',
      subject: 'billing',
    });
    expect(jwksFetches).toBe(1);
    // the scheme name is case-insensitive (RFC 7235 §2.1); the keys come from the cache
    expect((await call('/things', { authorization: `bearer ${access}` })).status).toBe(200);
    expect(jwksFetches).toBe(1);
  });

  it('answers a request without credentials with a bare Bearer challenge', async () => {
    for (const headers of [{}, { authorization: 'Basic YmlsbGluZzpzZWNyZXQ=' }] as Record<string, string>[]) {
      const res = await call('/things', headers);
      expect(res.status).toBe(401);
      expect(res.challenge).toBe(`Bearer realm="${ORDERS}", ${ORDERS_RM}`);
      expect(res.body.error).toBeUndefined();
    }
  });

  it('refuses a token for another API with invalid_token', async () => {
    const other = await token(INVENTORY, 'inventory:read');
    const res = await call('/things', { authorization: `Bearer ${other}` });
    expect(res.status).toBe(401);
    expect(res.challenge).toBe(`Bearer realm="${ORDERS}", error="invalid_token", error_description="the access token is not meant for this API", ${ORDERS_RM}`);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the access token is not meant for this API' });
  });

  it('refuses an expired token (the API clock moved past exp), with a few seconds of leeway', async () => {
    const access = await token();
    const { exp } = decodeJwt(access);
    try {
      clockOffsetMs = exp! * 1000 + 3_000 - Date.now(); // 3 s past exp: within the 5 s leeway
      expect((await call('/things', { authorization: `Bearer ${access}` })).status).toBe(200);
      clockOffsetMs = exp! * 1000 + 6_000 - Date.now();
      const res = await call('/things', { authorization: `Bearer ${access}` });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the access token has expired' });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('refuses a tampered signature and a tampered payload', async () => {
    const access = await token();
    const [h, p, s] = access.split('.');
    const i = Math.floor(s.length / 2);
    const badSignature = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const escalated = Buffer.from(JSON.stringify({ ...decodeJwt(access), scope: 'orders:read orders:write' })).toString('base64url');
    for (const forged of [badSignature, `${h}.${escalated}.${s}`]) {
      const res = await call('/things', { authorization: `Bearer ${forged}` });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the access token signature is invalid' });
    }
    // a foreign key using Gatehouse's own kid is no better
    const kid = decodeProtectedHeader(access).kid!;
    const before = jwksFetches;
    const impostor = await call('/things', { authorization: `Bearer ${await foreignToken(kid)}` });
    expect(impostor.status).toBe(401);
    expect(impostor.body.error_description).toBe('the access token signature is invalid');
    expect(jwksFetches).toBe(before);
  });

  it('refuses a token signed by a key Gatehouse never had, after fetching the JWKS again (once per cooldown)', async () => {
    // the kit's cooldown runs from when its fetch finished, a little after the stand-in saw it:
    // a margin, so that a loaded machine does not land inside the cooldown
    await sleep(lastJwksFetch + COOLDOWN_MS + 500 - Date.now());
    const before = jwksFetches;
    const unknown = await foreignToken('never-published');
    const res = await call('/things', { authorization: `Bearer ${unknown}` });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the access token is signed with an unknown key' });
    expect(jwksFetches).toBe(before + 1);
    // within the cooldown, unknown kids do not make the API hammer the issuer
    expect((await call('/things', { authorization: `Bearer ${await foreignToken('another-one')}` })).status).toBe(401);
    expect(jwksFetches).toBe(before + 1);
  });

  it('names the protected-resource metadata in every challenge (RFC 9728 §5.1): derived from the audience, given, or left out', async () => {
    const access = await token();
    expect((await call('/items')).challenge).toBe(`Bearer realm="${ITEMS}", resource_metadata="https://inventory.example.com/.well-known/oauth-protected-resource/v1/items"`);
    expect((await call('/items', { authorization: `Bearer ${access}` })).challenge).toBe(
      `Bearer realm="${ITEMS}", error="invalid_token", error_description="the access token is not meant for this API", resource_metadata="https://inventory.example.com/.well-known/oauth-protected-resource/v1/items"`,
    );
    // a given URL is quoted as a quoted-string
    expect((await call('/custom-metadata')).challenge).toBe(`Bearer realm="${ORDERS}", resource_metadata="https://docs.example.com/\\"meta\\""`);
    expect((await call('/no-metadata')).challenge).toBe(`Bearer realm="${ORDERS}"`);
    // a URN has no well-known location
    expect((await call('/urn')).challenge).toBe('Bearer realm="urn:example:orders"');
    // a good token still passes with the option set
    expect((await call('/custom-metadata', { authorization: `Bearer ${access}` })).status).toBe(200);
  });

  it('derives metadata URLs as RFC 9728 §3.1 says', () => {
    expect(protectedResourceMetadataUrl('https://api.example.com')).toBe('https://api.example.com/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataUrl('https://api.example.com/')).toBe('https://api.example.com/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataUrl('https://api.example.com:443/mcp')).toBe('https://api.example.com/.well-known/oauth-protected-resource/mcp');
    expect(protectedResourceMetadataUrl('http://127.0.0.1:8080/a/b/?x=1')).toBe('http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b/?x=1');
    expect(protectedResourceMetadataUrl('urn:example:orders')).toBeUndefined();
    expect(protectedResourceMetadataUrl('https://api.example.com/#f')).toBeUndefined();
    expect(protectedResourceMetadataUrl('not a url')).toBeUndefined();
    expect(() => protectedResourceMetadata({ issuer, resource: 'urn:example:orders' })).toThrow(TypeError);
    expect(() => protectedResourceMetadata({ issuer: '', resource: ORDERS })).toThrow(TypeError);
  });

  it('serves the protected-resource metadata (RFC 9728 §2, §3.2), field by field', async () => {
    const res = await fetch(`${apiUrl}/.well-known/oauth-protected-resource?ignored=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=600');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.resource).toBe(ORDERS);
    expect(body.authorization_servers).toEqual([issuer]);
    expect(body.bearer_methods_supported).toEqual(['header']);
    expect(body.scopes_supported).toEqual(['orders:read', 'orders:write']);
    expect(body.dpop_signing_alg_values_supported).toEqual(DPOP_ALGS);
    expect(body.dpop_bound_access_tokens_required).toBe(false);
    expect(body.resource_name).toBe('Orders');
    expect(body.resource_documentation).toBe('https://orders.example.com/docs');
    expect(body.resource_policy_uri).toBe('https://orders.example.com/policy');
    expect(body.resource_tos_uri).toBe('https://orders.example.com/tos');
    expect(Object.keys(body)).toHaveLength(10);

    // an identifier with a path: the path-inserted URL only (serveAtOrigin: false), no optional fields
    const items = await fetch(`${apiUrl}/.well-known/oauth-protected-resource/v1/items`);
    expect(items.status).toBe(200);
    expect(await items.json()).toEqual({
      resource: ITEMS,
      authorization_servers: [issuer],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: DPOP_ALGS,
      dpop_bound_access_tokens_required: false,
    });
    expect((await fetch(`${apiUrl}/.well-known/oauth-protected-resource/v1`)).status).toBe(404);

    const head = await fetch(`${apiUrl}/.well-known/oauth-protected-resource`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const preflight = await fetch(`${apiUrl}/.well-known/oauth-protected-resource`, {
      method: 'OPTIONS',
      headers: { origin: 'https://client.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('mcp-protocol-version');
    const post = await fetch(`${apiUrl}/.well-known/oauth-protected-resource`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  });

  it('answers a token without a required scope with 403 insufficient_scope', async () => {
    const access = await token();
    const res = await call('/write', { authorization: `Bearer ${access}` });
    expect(res.status).toBe(403);
    expect(res.challenge).toBe(
      `Bearer realm="${ORDERS}", error="insufficient_scope", error_description="the access token does not have the required scope", scope="orders:read orders:write", ${ORDERS_RM}`,
    );
    expect(res.body.error).toBe('insufficient_scope');
  });

  it('answers garbage with 400 or 401 and an OAuth error, never a 500', async () => {
    const access = await token();
    const [, payload, signature] = access.split('.');
    const header = (h: unknown) => Buffer.from(typeof h === 'string' ? h : JSON.stringify(h)).toString('base64url');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const hs256 = await new SignJWT(decodeJwt(access))
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: decodeProtectedHeader(access).kid })
      .sign(new TextEncoder().encode('a shared secret that is long enough!'));
    const cases: [string, number, string | undefined][] = [
      // a syntactically valid scheme this API does not take is no credential at all
      ['%%% garbage', 401, undefined],
      ['Bearer', 400, 'invalid_request'],
      ['Bearer ', 400, 'invalid_request'],
      ['Bearer a b', 400, 'invalid_request'],
      [`Bearer ${access}, DPoP ${access}`, 400, 'invalid_request'],
      ['{"not": "a credential"}', 400, 'invalid_request'],
      ['\u00e9t\u00e9 x', 400, 'invalid_request'],
      ['Bearer caf\u00e9', 400, 'invalid_request'],
      ['Bearer not-a-jwt', 401, 'invalid_token'],
      ['Bearer a.b.c', 401, 'invalid_token'],
      ['Bearer ....', 401, 'invalid_token'],
      [`Bearer ${'A'.repeat(12_000)}.${'B'.repeat(100)}.C`, 401, 'invalid_token'],
      [`Bearer ${header('not json')}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'none', typ: 'at+jwt' })}.${payload}.`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'ES256', typ: 'at+jwt', kid: { nested: true } })}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'ES256', typ: 'at+jwt', crit: ['exp'], exp: 1 })}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'ES256', typ: 'at+jwt', b64: false, crit: ['b64'] })}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'ES256', typ: 'at+jwt', jwk: await exportJWK(privateKey) })}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header({ alg: 'ES256', typ: 'JWT' })}.${payload}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${header([1, 2])}.${header([3])}.${signature}`, 401, 'invalid_token'],
      [`Bearer ${hs256}`, 401, 'invalid_token'],
      ['DPoP not-a-jwt', 401, 'invalid_token'],
    ];
    for (const [authorization, status, error] of cases) {
      const res = await call('/things', { authorization });
      expect({ authorization: authorization.slice(0, 80), status: res.status, error: res.body.error }).toEqual({
        authorization: authorization.slice(0, 80),
        status,
        error,
      });
      if (error) expect(res.challenge).toContain(`error="${error}"`);
      else expect(res.challenge).toBe(`Bearer realm="${ORDERS}", ${ORDERS_RM}`);
      // nothing of the presented token is echoed back
      expect(JSON.stringify(res.body)).not.toContain(payload);
    }
    expect(serverErrors).toEqual([]);
  });

  describe('DPoP-bound tokens', () => {
    let key: { privateKey: CryptoKey; publicKey: CryptoKey };
    let handle: oidc.DPoPHandle;
    let bound: string;

    beforeAll(async () => {
      key = await generateKeyPair('ES256');
      handle = oidc.getDPoPHandle(rp, key);
      const tokens = await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:read' }, { DPoP: handle });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      bound = tokens.access_token;
      expect((decodeJwt(bound).cnf as { jkt: string }).jkt).toBe(await calculateJwkThumbprint(await exportJWK(key.publicKey)));
    });

    const expectProofError = (res: Answer, description: string) => {
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/^DPoP realm="https:\/\/orders\.example\.com", error="invalid_dpop_proof", /);
      expect(res.challenge).toContain(`, ${ORDERS_RM}, algs="ES256 `);
      expect(res.body).toEqual({ error: 'invalid_dpop_proof', error_description: description });
    };

    it('accepts a bound token with a proof made by openid-client', async () => {
      const res = await oidc.fetchProtectedResource(rp, bound, new URL(`${apiUrl}/things?page=2`), 'GET', undefined, undefined, { DPoP: handle });
      expect(res.status).toBe(200);
      const { auth } = (await res.json()) as { auth: TokenAuth };
      expect(auth.clientId).toBe('billing');
      expect(auth.claims.cnf?.jkt).toBe((decodeJwt(bound).cnf as { jkt: string }).jkt);
    });

    it('accepts a hand-made proof, ignoring the query, for GET and POST', async () => {
      const get = await call('/things?x=1', { authorization: `DPoP ${bound}`, dpop: await proof(key, { accessToken: bound, htu: `${apiUrl}/things?y=2#f` }) });
      expect(get.status).toBe(200);
      const post = await call('/things', { authorization: `DPoP ${bound}`, dpop: await proof(key, { accessToken: bound, htm: 'POST' }) }, 'POST');
      expect(post.status).toBe(200);
    });

    it('refuses a bound token without a proof', async () => {
      expectProofError(await call('/things', { authorization: `DPoP ${bound}` }), 'a DPoP proof is required with this access token');
    });

    it('refuses a bound token sent with the Bearer scheme, even with a valid proof', async () => {
      const res = await call('/things', { authorization: `Bearer ${bound}`, dpop: await proof(key, { accessToken: bound }) });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/^DPoP realm="https:\/\/orders\.example\.com", error="invalid_token", .*algs="ES256 /);
      expect(res.body.error).toBe('invalid_token');
    });

    it('refuses an unbound token sent with the DPoP scheme', async () => {
      const unbound = await token();
      const res = await call('/things', { authorization: `DPoP ${unbound}`, dpop: await proof(key, { accessToken: unbound }) });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'this access token is not DPoP-bound: use the Bearer scheme' });
    });

    it('refuses a proof signed by another key', async () => {
      const other = await generateKeyPair('ES256');
      expectProofError(
        await call('/things', { authorization: `DPoP ${bound}`, dpop: await proof(other, { accessToken: bound }) }),
        'the DPoP proof is not signed by the key the access token is bound to',
      );
      // the other key's public JWK with the bound key's signature does not verify either
      const res = await call('/things', { authorization: `DPoP ${bound}`, dpop: await proof(key, { accessToken: bound, jwk: await exportJWK(other.publicKey) }) });
      expectProofError(res, 'the DPoP proof signature is invalid');
    });

    it('refuses a replayed proof', async () => {
      const once = await proof(key, { accessToken: bound });
      expect((await call('/things', { authorization: `DPoP ${bound}`, dpop: once })).status).toBe(200);
      expectProofError(await call('/things', { authorization: `DPoP ${bound}`, dpop: once }), 'the DPoP proof has already been used');
      // the same jti in a fresh proof is a replay too
      const jti = decodeJwt(once).jti!;
      expectProofError(
        await call('/things', { authorization: `DPoP ${bound}`, dpop: await proof(key, { accessToken: bound, jti }) }),
        'the DPoP proof has already been used',
      );
    });

    it('refuses a proof replayed on another worker of the API when the workers share a replay store', async () => {
      const once = await proof(key, { accessToken: bound, htu: `${apiUrl}/workers-shared` });
      expect((await call('/workers-shared', { authorization: `DPoP ${bound}`, dpop: once })).status).toBe(200);
      expectProofError(await call('/workers-shared', { authorization: `DPoP ${bound}`, dpop: once }), 'the DPoP proof has already been used');
      // the default store is per process, as the README says: the other worker has not seen it
      const twice = await proof(key, { accessToken: bound, htu: `${apiUrl}/workers-own` });
      expect((await call('/workers-own', { authorization: `DPoP ${bound}`, dpop: twice })).status).toBe(200);
      expect((await call('/workers-own', { authorization: `DPoP ${bound}`, dpop: twice })).status).toBe(200);
    });

    it('refuses a proof for another URL or method', async () => {
      const send = async (p: string, method = 'GET') => call('/things', { authorization: `DPoP ${bound}`, dpop: p }, method);
      expectProofError(await send(await proof(key, { accessToken: bound, htu: `${apiUrl}/other` })), 'the DPoP proof htu does not match the request URL');
      expectProofError(await send(await proof(key, { accessToken: bound, htu: `http://evil.example${new URL(apiUrl).port ? `:${new URL(apiUrl).port}` : ''}/things` })), 'the DPoP proof htu does not match the request URL');
      expectProofError(await send(await proof(key, { accessToken: bound, htm: 'POST' })), 'the DPoP proof htm does not match the request method');
      expectProofError(await send(await proof(key, { accessToken: bound, htm: 'GET' }), 'POST'), 'the DPoP proof htm does not match the request method');
    });

    it('refuses proofs that are stale, for another token, not dpop+jwt, carrying a private key, or not JWTs', async () => {
      const send = async (p: string) => call('/things', { authorization: `DPoP ${bound}`, dpop: p });
      const now = Math.floor(Date.now() / 1000);
      expectProofError(await send(await proof(key, { accessToken: bound, iat: now - 120 })), 'the DPoP proof is too old or not yet valid');
      expectProofError(await send(await proof(key, { accessToken: bound, iat: now + 120 })), 'the DPoP proof is too old or not yet valid');
      expectProofError(await send(await proof(key, { accessToken: await token() })), 'the DPoP proof ath does not match the access token');
      expectProofError(await send(await proof(key, { accessToken: bound, typ: 'JWT' })), 'the DPoP proof must have typ dpop+jwt');
      const extractable = await generateKeyPair('ES256', { extractable: true });
      expectProofError(
        await send(await proof(extractable, { accessToken: bound, jwk: await exportJWK(extractable.privateKey) })),
        'the DPoP proof key must be a public key',
      );
      const hs = await new SignJWT({ htm: 'GET', htu: `${apiUrl}/things`, ath: sha256(bound), jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
        .setIssuedAt()
        .sign(new TextEncoder().encode('a shared secret that is long enough!'));
      expectProofError(await send(hs), 'the DPoP proof must be signed with an asymmetric algorithm');
      expectProofError(await send('garbage'), 'the DPoP proof is malformed');
      const valid = await proof(key, { accessToken: bound });
      expectProofError(await send(`${valid}, ${valid}`), 'send exactly one DPoP proof');
      expect(serverErrors).toEqual([]);
    });
  });

  it('with introspection, refuses a token the client revoked (RFC 7009); without, it works until it expires', async () => {
    const t = await token();
    expect((await call('/introspected', { authorization: `Bearer ${t}` })).status).toBe(200);
    await oidc.tokenRevocation(rp, t);
    const refused = await call('/introspected', { authorization: `Bearer ${t}` });
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_token', error_description: 'the access token is no longer active' } });
    expect((await call('/things', { authorization: `Bearer ${t}` })).status).toBe(200);
    // an introspection the API cannot make is a 503, never a pass
    const cannot = await call('/introspected-wrongly', { authorization: `Bearer ${await token()}` });
    expect(cannot).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
  });

  it('keeps verifying with cached keys while the issuer is down, and answers 503 when it cannot check a token', async () => {
    const access = await token();
    issuerDown = true;
    try {
      // never reached the issuer: nothing to check with
      const cold = await call('/outage-cold', { authorization: `Bearer ${access}` });
      expect(cold).toEqual({
        status: 503,
        challenge: null,
        retryAfter: '10',
        body: { error: 'temporarily_unavailable', error_description: 'the access token cannot be checked right now: try again later' },
      });
      issuerDown = false;
      expect((await call('/outage-warm', { authorization: `Bearer ${access}` })).status).toBe(200);
      issuerDown = true;
      expect((await call('/outage-warm', { authorization: `Bearer ${access}` })).status).toBe(200);
      // an unknown kid might be a key the issuer has: the API cannot tell, so 503 rather than 401
      const unknown = await call('/outage-warm', { authorization: `Bearer ${await foreignToken('new-key?')}` });
      expect(unknown.status).toBe(503);
      expect((await call('/outage-warm', { authorization: `Bearer ${access}` })).status).toBe(200);
    } finally {
      issuerDown = false;
    }
  });

  it('uses stale keys during an outage only for a bounded time (key set, short durations)', async () => {
    let down = false;
    let fetches = 0;
    const keys = createKeySet(new URL(`${issuer}/jwks`), {
      cooldownMs: 0,
      maxAgeMs: 100,
      staleIfErrorMs: 400,
      retryMs: 0,
      fetch: async (input, init) => {
        fetches++;
        if (down) throw new TypeError('fetch failed');
        return fetch(input, init);
      },
    });
    const access = await token();
    const verify = () => jwtVerify(access, keys, { issuer, audience: ORDERS });
    const started = Date.now();
    await expect(verify()).resolves.toBeTruthy();
    expect(fetches).toBe(1);
    await sleep(started + 150 - Date.now());
    down = true;
    await expect(verify()).resolves.toBeTruthy(); // cache stale, fetch failed: last good keys
    expect(fetches).toBe(2);
    await sleep(started + 500 - Date.now());
    await expect(verify()).rejects.toBeInstanceOf(KeysUnavailableError);
    down = false;
    await expect(verify()).resolves.toBeTruthy();
  });

  it('accepts tokens signed with a rotated key without restarting the API (or Gatehouse)', async () => {
    /** Rotates with no publish lead; Gatehouse switches live, so wait until it signs with a new key. */
    const rotateAndRestart = async (times: number) => {
      const before = decodeProtectedHeader(await token()).kid;
      for (let i = 0; i < times; i += 1) expect(runCli(['keys', 'rotate', '--json'], db.url, { env: { KEY_PUBLISH_LEAD: '0' } }).code).toBe(0);
      await eventually(async () => decodeProtectedHeader(await token()).kid !== before, 'Gatehouse to sign with the rotated key');
    };
    const old = await token();
    expect((await call('/things', { authorization: `Bearer ${old}` })).status).toBe(200);
    const fetchesBefore = jwksFetches;

    // One rotation: the new signing key was published as "next" before, so the
    // API already has it and needs no refetch.
    await rotateAndRestart(1);
    const next = await token();
    expect(decodeProtectedHeader(next).kid).not.toBe(decodeProtectedHeader(old).kid);
    expect((await call('/things', { authorization: `Bearer ${next}` })).status).toBe(200);
    expect(jwksFetches).toBe(fetchesBefore);

    // Two more: now Gatehouse signs with a key the API has never seen; the API
    // fetches the JWKS again on the unknown kid and accepts the token.
    await rotateAndRestart(2);
    const fresh = await token();
    // the kit's cooldown runs from when its fetch finished, a little after the stand-in saw it:
    // a margin, so that a loaded machine does not land inside the cooldown
    await sleep(lastJwksFetch + COOLDOWN_MS + 500 - Date.now());
    const res = await call('/things', { authorization: `Bearer ${fresh}` });
    expect(res.status).toBe(200);
    expect(res.body.auth.token).toBe(fresh);
    expect(jwksFetches).toBe(fetchesBefore + 1);
    // retired keys stay published as "previous" (two per algorithm), so their tokens still verify
    expect((await call('/things', { authorization: `Bearer ${next}` })).status).toBe(200);
    expect(jwksFetches).toBe(fetchesBefore + 1);
  });

  it('runs examples/protected-api through the package export gatehouse/resource', async () => {
    const port = await freePort();
    const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'examples', 'protected-api', 'server.mjs')], {
      env: { PATH: process.env.PATH, ISSUER: issuer, AUDIENCE: EXAMPLE_API, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    try {
      const deadline = Date.now() + 10_000;
      while (!out.includes('protected API on')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the example did not start:\n${out}`);
        await sleep(50);
      }
      const url = `http://127.0.0.1:${port}/protected`;
      const good = await fetch(url, { headers: { authorization: `Bearer ${await token(EXAMPLE_API, 'read:things')}` } });
      expect(good.status).toBe(200);
      expect(await good.json()).toEqual({ message: 'Hello from a protected API', sub: 'billing', scope: 'read:things' });
      const wrong = await answer(await fetch(url, { headers: { authorization: `Bearer ${await token()}` } }));
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_token');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('answered no request with a server error', () => {
    expect(serverErrors).toEqual([]);
  });
});
