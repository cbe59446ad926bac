import { jest } from '@jest/globals';
import {
  databaseKinds, jsonRequest, startInProcess, type InProcess, type JsonResponse,
} from '../support/in-process.js';
import { digestOf } from '../../src/storage/digest.js';

/** The guard in front of /reg (rate limits, body checks, RFC 7592 secrets), in-process. */

const app = { client_name: 'Third-party app', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code', 'refresh_token'] };
const withBadRedirect = { ...app, redirect_uris: ['http://app.example.com/cb'] };

const leaks = (res: JsonResponse) => ({
  hash: res.raw.includes('$argon2id$'),
  gatehouseKeys: Object.keys(res.body ?? {}).filter((k) => k.startsWith('gatehouse_')),
});

/** Every timer real; only the clock (Date) is moved by the test. */
const ONLY_DATE = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback',
  'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;

describe('the per-IP registration rate limit', () => {
  let server: InProcess;
  const advance = (ms: number) => jest.setSystemTime(Date.now() + ms);
  beforeAll(async () => {
    jest.useFakeTimers({ doNotFake: [...ONLY_DATE], now: Date.now() });
    server = await startInProcess({ env: { REGISTRATION: 'open', REGISTRATION_RATE_LIMIT: '3' } });
  });
  afterAll(async () => {
    await server?.close();
    jest.useRealTimers();
  });

  const register = (path = '/reg') => jsonRequest(`${server.url}${path}`, { body: app });

  it('answers 429 with Retry-After past the limit, and lets the next minute (on a moved clock) through', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await register()).status);
    expect(statuses).toEqual([201, 201, 201, 429]);

    const limited = await register();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(limited.body).toMatchObject({ error: 'too_many_requests' });
    // oidc-provider also routes /REG and /reg/: the limit holds there too
    expect((await register('/REG/')).status).toBe(429);

    advance(30_000);
    const later = await register();
    expect(later.status).toBe(429);
    expect(later.headers.get('retry-after')).toBe('30');
    // the registered clients (the account page's built-in client is there too)
    expect(await server.database.prisma.client.count({ where: { dynamic: true } })).toBe(3);

    advance(30_000);
    expect((await register()).status).toBe(201);
    expect(await server.database.prisma.client.count({ where: { dynamic: true } })).toBe(4);
  });
});

describe('the registration guard refuses bodies oidc-provider should not see', () => {
  let server: InProcess;
  let token: string;
  beforeAll(async () => {
    server = await startInProcess({ env: { REGISTRATION_RATE_LIMIT: '1000' } });
    token = await server.initialAccessToken();
  });
  afterAll(() => server?.close());

  const register = (body: unknown) => jsonRequest(`${server.url}/reg`, { body, token });
  const clients = () => server.database.prisma.client.count();

  it('refuses a body over 56 KiB with 400, and accepts one just under', async () => {
    const before = await clients();
    const tooLarge = await register(JSON.stringify(app) + ' '.repeat(57 * 1024));
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.body).toMatchObject({ error: 'invalid_request', error_description: 'request entity too large' });
    expect(await clients()).toBe(before);
    expect((await register(JSON.stringify(app) + ' '.repeat(55 * 1024))).status).toBe(201);
  });

  it('refuses malformed JSON with 400 invalid_request', async () => {
    const res = await register('{"client_name": "Broken",');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  it.each([
    ['an array', JSON.stringify([app])],
    ['null', 'null'],
    ['a string', '"Third-party app"'],
  ])('refuses %s with 400 invalid_request', async (_, body) => {
    const before = await clients();
    const res = await register(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', error_description: 'the request body must be a JSON object' });
    expect(await clients()).toBe(before);
  });

  it('refuses sector_identifier_uri with 400 invalid_client_metadata (oidc-provider would fetch it)', async () => {
    const before = await clients();
    const res = await register({ ...app, sector_identifier_uri: 'https://169.254.169.254/latest/meta-data' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_client_metadata' });
    expect(await clients()).toBe(before);
  });

  it('refuses pairwise subjects and encryption by name, instead of dropping them', async () => {
    const before = await clients();
    for (const [extra, named] of [
      [{ subject_type: 'pairwise' }, 'subject_type'],
      [{ id_token_encrypted_response_alg: 'RSA-OAEP' }, 'id_token_encrypted_response_alg'],
      [{ userinfo_encrypted_response_alg: 'RSA-OAEP', userinfo_encrypted_response_enc: 'A128GCM' }, 'userinfo_encrypted_response_alg'],
      [{ request_object_encryption_alg: 'RSA-OAEP' }, 'request_object_encryption_alg'],
    ] as const) {
      const res = await register({ ...app, ...extra });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_client_metadata', error_description: expect.stringContaining(named) });
    }
    expect(await clients()).toBe(before);
  });
});

describe.each(databaseKinds())('registration with initial access tokens on %s', (kind) => {
  let server: InProcess;
  beforeAll(async () => {
    server = await startInProcess({ kind, env: { REGISTRATION_RATE_LIMIT: '1000' } });
  });
  afterAll(() => server?.close());

  const register = (body: unknown, token: string) => jsonRequest(`${server.url}/reg`, { body, token });
  const stored = (clientId: string) => server.database.prisma.client.findUnique({ where: { clientId } });
  // stored under a digest of the token (storage/payload-sealing.ts)
  const iatRow = (token: string) => server.database.prisma.oidcPayload.findUnique({ where: { type_id: { type: 'InitialAccessToken', id: digestOf(token) } } });
  /** Client authentication at /token: a right secret gets past it (invalid_grant for a made-up code), a wrong one does not. */
  const tokenEndpointAuth = async (clientId: string, secret: string) => {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'made-up', redirect_uri: app.redirect_uris[0], code_verifier: 'v'.repeat(43) }),
    });
    return ((await res.json()) as { error: string }).error;
  };

  it('lets a client update itself with its right client_secret, again and again, never showing the hash or gatehouse_ metadata', async () => {
    const created = await register(app, await server.initialAccessToken());
    expect(created.status).toBe(201);
    expect(leaks(created)).toEqual({ hash: false, gatehouseKeys: [] });
    const { client_id: clientId, client_secret: secret, registration_client_uri: uri } = created.body;
    const hash = (await stored(clientId))!.secretHash;
    expect(hash).toMatch(/^\$argon2id\$/);

    let rat: string = created.body.registration_access_token;
    const read = await jsonRequest(uri, { token: rat });
    expect(read.status).toBe(200);
    expect(leaks(read)).toEqual({ hash: false, gatehouseKeys: [] });
    rat = read.body.registration_access_token ?? rat;

    for (const name of ['Renamed', 'Renamed again']) {
      const put = await jsonRequest(uri, { method: 'PUT', token: rat, body: { client_id: clientId, client_secret: secret, client_name: name, redirect_uris: app.redirect_uris } });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ client_id: clientId, client_name: name });
      expect(leaks(put)).toEqual({ hash: false, gatehouseKeys: [] });
      rat = put.body.registration_access_token ?? rat;
      expect(await stored(clientId)).toMatchObject({ name, secretHash: hash });
    }
    // the secret it was given still authenticates it
    expect(await tokenEndpointAuth(clientId, secret)).toBe('invalid_grant');
    expect(await tokenEndpointAuth(clientId, 'not-the-secret')).toBe('invalid_client');
  });

  it('refuses an update with a wrong client_secret and changes nothing', async () => {
    const created = (await register(app, await server.initialAccessToken())).body;
    const before = await stored(created.client_id);
    const put = await jsonRequest(created.registration_client_uri, {
      method: 'PUT',
      token: created.registration_access_token,
      body: { client_id: created.client_id, client_secret: 'not-the-secret', client_name: 'Hijacked', redirect_uris: ['https://evil.example.com/cb'] },
    });
    expect(put.status).toBe(400);
    expect(put.body.error).toEqual(expect.any(String));
    expect(leaks(put)).toEqual({ hash: false, gatehouseKeys: [] });
    expect(await stored(created.client_id)).toMatchObject({ name: before!.name, redirectUris: app.redirect_uris, secretHash: before!.secretHash });
  });

  it('keeps the signing algorithms an app registers for ID tokens and UserInfo, and refuses one Gatehouse does not sign with', async () => {
    const token = await server.initialAccessToken();
    const res = await register({ ...app, id_token_signed_response_alg: 'RS256', userinfo_signed_response_alg: 'ES256', default_max_age: 300, require_auth_time: true }, token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id_token_signed_response_alg: 'RS256', userinfo_signed_response_alg: 'ES256', default_max_age: 300, require_auth_time: true });
    const read = await jsonRequest(res.body.registration_client_uri, { token: res.body.registration_access_token });
    expect(read.body).toMatchObject({ id_token_signed_response_alg: 'RS256', userinfo_signed_response_alg: 'ES256' });
    const hs = await register({ ...app, userinfo_signed_response_alg: 'HS256' }, token);
    expect(hs.status).toBe(400);
    expect(hs.body).toMatchObject({ error: 'invalid_client_metadata' });
  });

  it('registers one client with a single-use token, then refuses it', async () => {
    const once = await server.initialAccessToken({ singleUse: true });
    const clients = () => server.database.prisma.client.count();
    const before = await clients();
    expect((await register(app, once)).status).toBe(201);
    expect((await iatRow(once))?.consumedAt).not.toBeNull();
    const second = await register(app, once);
    expect(second.status).toBe(401);
    expect(second.body).toMatchObject({ error: 'invalid_token' });
    expect(await clients()).toBe(before + 1);
  });

  it('does not use up a single-use token on a registration that fails validation', async () => {
    const once = await server.initialAccessToken({ singleUse: true });
    const refused = await register(withBadRedirect, once);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_redirect_uri' });
    expect((await iatRow(once))?.consumedAt).toBeNull();
    // the app fixes its typo and tries again at once
    expect((await register(app, once)).status).toBe(201);
    expect((await register(app, once)).status).toBe(401);
  });
});
