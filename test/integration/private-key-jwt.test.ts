import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi } from '../support/gatehouse.js';

/**
 * private_key_jwt (RFC 7523) end to end: clients with `jwks` and `jwks_uri`,
 * created with the CLI, authenticating at /token of two Gatehouse processes
 * that share one database (one issuer, as behind a balancer).
 */

const ORDERS = 'https://orders.example.com';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface SigningKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

async function signingKey(alg = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, kid };
}

/** A client assertion; every claim can be overridden to make a bad one. */
function assertion(key: SigningKey, clientId: string, aud: string, claims: Record<string, unknown> = {}, alg = 'ES256') {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg, kid: key.kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setIssuedAt((claims.iat as number | undefined) ?? now)
    .setExpirationTime((claims.exp as number | undefined) ?? now + 60)
    .sign(key.privateKey);
}

async function tokenWith(server: string, clientId: string, clientAssertion: string) {
  const res = await fetch(`${server}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', resource: ORDERS, client_id: clientId,
      client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** A client's own key server: serves whatever set it currently holds. */
async function jwksServer(): Promise<{ url: string; keys: JWK[]; fetches: number; close(): Promise<void> }> {
  const state = { keys: [] as JWK[], fetches: 0 };
  const server: Server = createServer((_req, res) => {
    state.fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/jwks.json`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe.each(databaseKinds())('private_key_jwt on %s', (kind) => {
  let db: TestDatabase;
  let first: RunningServer;
  let second: RunningServer;
  let keyServer: Awaited<ReturnType<typeof jwksServer>>;
  let issuer: string;
  const key = { inline: undefined as unknown as SigningKey, remote: undefined as unknown as SigningKey };
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pkjwt-'));

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    createApi(db.url, ['--identifier', ORDERS, '--scope', 'orders:read']);
    key.inline = await signingKey();
    key.remote = await signingKey();
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.inline.publicJwk] }));
    const inline = runCli(['clients', 'create', '--json', '--id', 'signer', '--name', 'Signer', '--auth-method', 'private_key_jwt',
      '--jwks-file', join(dir, 'jwks.json'), '--resource', ORDERS], db.url);
    expect(inline.code).toBe(0);
    expect(inline.json()).not.toHaveProperty('clientSecret');
    keyServer = await jwksServer();
    keyServer.keys = [key.remote.publicJwk];
    const remote = runCli(['clients', 'create', '--json', '--id', 'remote-signer', '--name', 'Remote', '--auth-method', 'private_key_jwt',
      '--jwks-uri', keyServer.url, '--resource', ORDERS], db.url);
    expect(remote.code).toBe(0);
    const port = await freePort();
    issuer = `http://localhost:${port}`;
    // the client's key server is on loopback: allowed for clients an admin registered
    const env = { DATABASE_URL: db.url, ISSUER: issuer, ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' };
    first = await startServer({ ...env, PORT: String(port) });
    second = await startServer(env);
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await keyServer?.close();
    await db?.drop();
  });

  it('the CLI stores the public keys, never a secret, and refuses private keys and half-configured clients', () => {
    const shown = runCli(['clients', 'show', 'signer', '--json'], db.url).json();
    expect(shown).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', hasSecret: false, jwks: { keys: [expect.objectContaining({ kid: key.inline.kid })] }, jwksUri: null });

    writeFileSync(join(dir, 'private.json'), JSON.stringify({ keys: [{ ...key.inline.publicJwk, d: 'c2VjcmV0' }] }));
    const privateKey = runCli(['clients', 'create', '--name', 'Leaky', '--auth-method', 'private_key_jwt', '--jwks-file', join(dir, 'private.json')], db.url);
    expect(privateKey.code).toBe(1);
    expect(privateKey.stderr).toContain('must be a public key: remove "d"');
    const noKeys = runCli(['clients', 'create', '--name', 'Keyless', '--auth-method', 'private_key_jwt'], db.url);
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toContain("private_key_jwt needs the client's public keys: jwks or jwksUri");
    const notJson = runCli(['clients', 'create', '--name', 'Bad', '--auth-method', 'private_key_jwt', '--jwks-file', join(dir, 'missing.json')], db.url);
    expect(notJson.code).not.toBe(0);
    expect(notJson.stderr).toContain('--jwks-file: cannot read');
    const secretWithKeys = runCli(['clients', 'create', '--name', 'Mixed', '--jwks-uri', 'https://keys.example.com/jwks'], db.url);
    expect(secretWithKeys.code).toBe(1);
    expect(secretWithKeys.stderr).toContain('jwks and jwksUri are only used with private_key_jwt');
    const rotate = runCli(['clients', 'rotate-secret', 'signer'], db.url);
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain('authenticates with private_key_jwt and has no secret');
    // nothing was written by the refusals
    const list = runCli(['clients', 'list', '--json'], db.url).json() as { clientId: string }[];
    expect(list.map((c) => c.clientId).sort()).toEqual(['gatehouse-account', 'gatehouse-console', 'remote-signer', 'signer']);
  });

  it('seeds private_key_jwt and FAPI clients idempotently, and refuses a bad one with its path', () => {
    const seed = {
      clients: [
        { clientId: 'seeded-signer', name: 'Seeded', tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [key.inline.publicJwk] }, resources: [ORDERS] },
        { clientId: 'seeded-bank', name: 'Bank', profile: 'fapi2', tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'https://bank.example.com/jwks.json',
          grantTypes: ['authorization_code'], redirectUris: ['https://bank.example.com/cb'], resources: [ORDERS] },
      ],
    };
    writeFileSync(join(dir, 'seed.json'), JSON.stringify(seed));
    const first = runCli(['seed', join(dir, 'seed.json'), '--json'], db.url);
    expect(first.code).toBe(0);
    expect(first.json().clients).toEqual([{ clientId: 'seeded-signer', action: 'created' }, { clientId: 'seeded-bank', action: 'created' }]);
    const again = runCli(['seed', join(dir, 'seed.json'), '--json'], db.url);
    expect(again.json().clients.map((c: { action: string }) => c.action)).toEqual(['unchanged', 'unchanged']);

    const bad = { clients: [{ clientId: 'bad-bank', name: 'Bad', profile: 'fapi2', secret: 'x'.repeat(40), redirectUris: [], resources: [ORDERS] }] };
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
    const refused = runCli(['seed', join(dir, 'bad.json')], db.url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('clients[0].tokenEndpointAuthMethod: the fapi2 profile allows only private_key_jwt');
    expect(runCli(['clients', 'show', 'bad-bank'], db.url).code).toBe(1);
    for (const id of ['seeded-signer', 'seeded-bank']) expect(runCli(['clients', 'delete', id], db.url).code).toBe(0);
  });

  it('openid-client authenticates with its private key and gets a token', async () => {
    const rp = await oidc.discovery(new URL(issuer), 'signer', undefined, oidc.PrivateKeyJwt({ key: key.inline.privateKey, kid: key.inline.kid }), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(rp.serverMetadata().token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:read' });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('orders:read');
  });

  it('refuses a replayed assertion, on the same instance and on another one', async () => {
    const once = await assertion(key.inline, 'signer', issuer);
    expect((await tokenWith(first.url, 'signer', once)).status).toBe(200);
    expect(await tokenWith(first.url, 'signer', once)).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    const other = await assertion(key.inline, 'signer', issuer);
    expect((await tokenWith(second.url, 'signer', other)).status).toBe(200);
    expect((await tokenWith(first.url, 'signer', other)).status).toBe(401);
  });

  it('accepts exactly one of the same assertion sent to both instances at once', async () => {
    for (let round = 0; round < 5; round += 1) {
      const raced = await assertion(key.inline, 'signer', issuer);
      const answers = await Promise.all([first, second, first, second].map((s) => tokenWith(s.url, 'signer', raced)));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401, 401]);
    }
  });

  it('refuses a wrong key, an expired assertion, a wrong audience and another client\'s assertion', async () => {
    const stranger = await signingKey();
    const refusals = [
      await assertion({ ...stranger, kid: key.inline.kid }, 'signer', issuer),
      await assertion(key.inline, 'signer', issuer, { exp: Math.floor(Date.now() / 1000) - 120 }),
      await assertion(key.inline, 'signer', 'https://elsewhere.example.com'),
      // valid for a year: a long-lived credential, refused (at most 5 minutes)
      await assertion(key.inline, 'signer', issuer, { exp: Math.floor(Date.now() / 1000) + 365 * 86_400 }),
      // made an hour ago, valid 4 more minutes: a 64-minute assertion, refused too
      await assertion(key.inline, 'signer', issuer, { iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) + 240 }),
    ];
    for (const bad of refusals) {
      expect(await tokenWith(first.url, 'signer', bad)).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    }
    // an assertion issued for one client, presented as another
    const foreign = await tokenWith(first.url, 'signer', await assertion(key.inline, 'remote-signer', issuer));
    expect(foreign).toEqual({ status: 400, body: { error: 'invalid_request', error_description: 'client_id mismatch' } });
  });

  it('fetches keys from jwks_uri and picks up a key the client rotated in', async () => {
    expect((await tokenWith(first.url, 'remote-signer', await assertion(key.remote, 'remote-signer', issuer))).status).toBe(200);
    const fetched = keyServer.fetches;
    // the same key again: no fetch
    expect((await tokenWith(first.url, 'remote-signer', await assertion(key.remote, 'remote-signer', issuer))).status).toBe(200);
    expect(keyServer.fetches).toBe(fetched);

    const rotated = await signingKey();
    keyServer.keys = [rotated.publicJwk];
    // within a few seconds of the last fetch the new key is looked for again at most once per cooldown
    let status = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && status !== 200) {
      status = (await tokenWith(first.url, 'remote-signer', await assertion(rotated, 'remote-signer', issuer))).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(status).toBe(200);
    // the failed attempts did not fetch on every request
    expect(keyServer.fetches - fetched).toBeLessThanOrEqual(4);
    // the retired key no longer works
    expect((await tokenWith(first.url, 'remote-signer', await assertion(key.remote, 'remote-signer', issuer))).status).toBe(401);
  }, 30_000);
});

describe.each(databaseKinds())('private_key_jwt for a registered app on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    server = await startServer({ DATABASE_URL: db.url, REGISTRATION: 'open', ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('registers with jwks, never gets a secret, and its jwks_uri on a private address is refused', async () => {
    const key = await signingKey();
    const register = (body: Record<string, unknown>) =>
      fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const res = await register({ client_name: 'Signer app', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] } });
    expect(res.status).toBe(201);
    const client = (await res.json()) as Record<string, unknown>;
    expect(client).not.toHaveProperty('client_secret');
    const stored = runCli(['clients', 'show', String(client.client_id), '--json'], db.url).json();
    expect(stored).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', hasSecret: false, dynamic: true });

    // bad input: a private key, a secret method with keys, a profile only an admin sets; nothing is stored
    const before = (runCli(['clients', 'list', '--json'], db.url).json() as unknown[]).length;
    const base = { client_name: 'Bad app', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
    const refusals = [
      { ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...key.publicJwk, d: 'c2VjcmV0' }] } },
      { ...base, token_endpoint_auth_method: 'private_key_jwt' },
      { ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, gatehouse_profile: 'fapi2' },
      { ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: 'not a key set' },
    ];
    for (const body of refusals) {
      const refused = await register(body);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ error: 'invalid_client_metadata', error_description: expect.any(String) });
    }
    expect((runCli(['clients', 'list', '--json'], db.url).json() as unknown[]).length).toBe(before);

    // an app's own jwks_uri is never exempt from SSRF protection
    const keyServer = await jwksServer();
    keyServer.keys = [key.publicJwk];
    try {
      const remote = await register({ client_name: 'Remote app', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: keyServer.url });
      if (remote.status === 201) {
        const { client_id: id } = (await remote.json()) as { client_id: string };
        const answer = await tokenWith(server.url, id, await assertion(key, id, server.url));
        expect(answer.status).toBe(401);
        expect(answer.body.error).toBe('invalid_client');
      } else {
        expect(remote.status).toBe(400);
      }
      expect(keyServer.fetches).toBe(0);
    } finally {
      await keyServer.close();
    }
  });
});
