import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually, relyingParty, tokenRequest } from '../support/gatehouse.js';

const ORDERS = 'https://orders.example.com';
const LEDGER = 'https://ledger.example.com';

describe.each(databaseKinds())('client_credentials end to end on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;
  let service: { clientId: string; clientSecret: string };
  const issued: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    createApi(db.url, ['--identifier', ORDERS, '--name', 'Orders', '--scope', 'orders:read', '--scope', 'orders:write', '--ttl', '300']);
    createApi(db.url, ['--identifier', LEDGER, '--scope', 'ledger:read', '--format', 'opaque', '--introspector', 'ledger-api']);
    service = createClient(db.url, ['--name', 'Billing', '--id', 'billing', '--resource', ORDERS, '--resource', LEDGER, '--scope', 'orders:read', '--scope', 'ledger:read']);
    server = await startServer({ DATABASE_URL: db.url });
  });

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('publishes discovery metadata and a JWKS with current and next ES256 and RS256 keys', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const meta = rp.serverMetadata();
    expect(meta.issuer).toBe(server.url);
    expect(meta.token_endpoint).toBe(`${server.url}/token`);
    expect(meta.introspection_endpoint).toBe(`${server.url}/token/introspection`);
    expect(meta.revocation_endpoint).toBe(`${server.url}/token/revocation`);
    expect(meta.grant_types_supported).toContain('client_credentials');
    // client_secret holds a hash: no symmetric (HS*) algorithm may be offered anywhere
    expect(JSON.stringify(meta)).not.toMatch(/"HS\d+"/);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    expect(meta.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    const jwks = (await (await fetch(meta.jwks_uri!)).json()) as { keys: Record<string, string>[] };
    // current keys, and the next ones published ahead of rotation
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'ES256', 'RS256', 'RS256']);
    for (const key of jwks.keys) {
      expect(key.d).toBeUndefined(); // public parts only
      expect(key.use).toBe('sig');
    }
  });

  it('issues an RFC 9068 JWT for a registered API that verifies against /jwks', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:read orders:write' });
    issued.push(tokens.access_token);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    // the client is limited to orders:read, so orders:write is dropped
    expect(tokens.scope).toBe('orders:read');
    expect(tokens.expires_in).toBe(300);

    const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: server.url,
      audience: ORDERS,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload.client_id).toBe('billing');
    expect(payload.sub).toBe('billing');
    expect(payload.scope).toBe('orders:read');
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(payload.jti).toEqual(expect.any(String));

    await expect(jwtVerify(tokens.access_token, jwks, { issuer: server.url, audience: LEDGER })).rejects.toThrow();
  });

  it('accepts client_secret_post as well as client_secret_basic', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret, 'post');
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:read' });
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt');
  });

  it('issues stored opaque tokens for an opaque API: introspectable, then inactive once revoked', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: LEDGER, scope: 'ledger:read' });
    issued.push(tokens.access_token);
    expect(tokens.access_token.split('.')).toHaveLength(1);

    const active = await oidc.tokenIntrospection(rp, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: 'billing', aud: LEDGER, scope: 'ledger:read', token_type: 'Bearer' });

    await oidc.tokenRevocation(rp, tokens.access_token);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
  });

  it('issues an opaque token when no resource is requested', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(rp);
    issued.push(tokens.access_token);
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const active = await oidc.tokenIntrospection(rp, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: 'billing' });
    expect(active.aud).toBeUndefined();
    await oidc.tokenRevocation(rp, tokens.access_token);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
  });

  it('tells a client only about its own tokens, and an API introspector about tokens for its API', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const opaque = (await oidc.clientCredentialsGrant(rp, { resource: LEDGER, scope: 'ledger:read' })).access_token;
    const nosy = createClient(db.url, ['--name', 'Nosy']);
    const introspector = createClient(db.url, ['--name', 'Ledger API', '--id', 'ledger-api']);
    const introspect = (who: { clientId: string; clientSecret: string }) =>
      fetch(`${server.url}/token/introspection`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${who.clientId}:${who.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: opaque }),
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    await eventually(async () => (await tokenRequest(server.url, { grant_type: 'client_credentials' }, [nosy.clientId, nosy.clientSecret])).status === 200, 'new clients to reach the server');
    // another client learns nothing about billing's token
    expect(await introspect(nosy)).toEqual({ active: false });
    // the API's own client does: it is a registered introspector of the ledger API
    expect(await introspect(introspector)).toMatchObject({ active: true, client_id: 'billing', aud: LEDGER });
  });

  it('requires client authentication for introspection and revocation', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const { access_token } = await oidc.clientCredentialsGrant(rp);
    for (const path of ['/token/introspection', '/token/revocation']) {
      const res = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: access_token, client_id: 'billing' }),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
    }
    expect((await oidc.tokenIntrospection(rp, access_token)).active).toBe(true);
  });

  it('answers a wrong secret and an unknown client with invalid_client', async () => {
    const wrong = await relyingParty(server.url, service.clientId, `${service.clientSecret}x`);
    // 401 with a WWW-Authenticate challenge (RFC 6749 §5.2), which openid-client surfaces as such
    const invalidClient = { status: 401, cause: [expect.objectContaining({ scheme: 'basic', parameters: expect.objectContaining({ error: 'invalid_client' }) })] };
    await expect(oidc.clientCredentialsGrant(wrong, { resource: ORDERS })).rejects.toMatchObject(invalidClient);
    const unknown = await relyingParty(server.url, 'no-such-client', service.clientSecret);
    await expect(oidc.clientCredentialsGrant(unknown, { resource: ORDERS })).rejects.toMatchObject(invalidClient);
  });

  it('refuses an API the client is not allowed, and an unknown API, with invalid_target', async () => {
    const other = createClient(db.url, ['--name', 'Other', '--resource', LEDGER]);
    const rp = await relyingParty(server.url, other.clientId, other.clientSecret);
    await eventually(
      async () => (await tokenRequest(server.url, { grant_type: 'client_credentials' }, [other.clientId, other.clientSecret])).status === 200,
      'the new client to reach the server',
    );
    await expect(oidc.clientCredentialsGrant(rp, { resource: ORDERS })).rejects.toMatchObject({ error: 'invalid_target' });
    await expect(oidc.clientCredentialsGrant(rp, { resource: 'https://unknown.example.com' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('answers malformed token requests with OAuth errors, never a 500', async () => {
    const basic: [string, string] = [service.clientId, service.clientSecret];
    const cases: [Record<string, string>, [string, string] | undefined, string][] = [
      [{}, basic, 'invalid_request'],
      [{ grant_type: 'password', username: 'a', password: 'b' }, basic, 'unsupported_grant_type'],
      [{ grant_type: 'client_credentials', resource: 'not a uri' }, basic, 'invalid_target'],
      [{ grant_type: 'client_credentials', resource: `${ORDERS}#frag` }, basic, 'invalid_target'],
      [{ grant_type: 'client_credentials' }, undefined, 'invalid_request'],
    ];
    for (const [body, auth, error] of cases) {
      const res = await tokenRequest(server.url, body, auth);
      expect({ status: res.status, error: res.body.error }).toEqual({ status: expect.any(Number), error });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    const garbage = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: 'Basic %%%not-base64', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(garbage.status).toBeLessThan(500);
    const json = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('rejects a rotated secret as soon as the new one is in force, and never from the cache', async () => {
    const client = createClient(db.url, ['--name', 'Rotating', '--resource', ORDERS]);
    const grant = (secret: string) => tokenRequest(server.url, { grant_type: 'client_credentials', resource: ORDERS }, [client.clientId, secret]);
    await eventually(async () => (await grant(client.clientSecret)).status === 200, 'the new client to reach the server');
    // the old secret is now in the verification cache
    expect((await grant(client.clientSecret)).status).toBe(200);

    const rotated = runCli(['clients', 'rotate-secret', client.clientId, '--json'], db.url);
    expect(rotated.code).toBe(0);
    const newSecret = rotated.json().clientSecret as string;
    expect(newSecret).not.toBe(client.clientSecret);

    await eventually(async () => (await grant(newSecret)).status === 200, 'the rotated secret to reach the server');
    const old = await grant(client.clientSecret);
    expect(old.status).toBe(401);
    expect(old.body.error).toBe('invalid_client');
    expect((await grant(newSecret)).status).toBe(200);
  });

  it('stops issuing to a deleted client once the change reaches the server', async () => {
    const client = createClient(db.url, ['--name', 'Short-lived']);
    const grant = () => tokenRequest(server.url, { grant_type: 'client_credentials' }, [client.clientId, client.clientSecret]);
    await eventually(async () => (await grant()).status === 200, 'the new client to reach the server');
    expect(runCli(['clients', 'delete', client.clientId], db.url).code).toBe(0);
    await eventually(async () => (await grant()).status === 401, 'the deletion to reach the server');
  });

  it('keeps keys, opaque tokens and clients across a restart', async () => {
    const rp = await relyingParty(server.url, service.clientId, service.clientSecret);
    const jwt = (await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:read' })).access_token;
    const opaque = (await oidc.clientCredentialsGrant(rp, { resource: LEDGER, scope: 'ledger:read' })).access_token;
    issued.push(jwt, opaque);
    const jwksBefore = await (await fetch(`${server.url}/jwks`)).json();

    expect(await server.stop()).toBe(0);
    const logs = server.output();
    server = await startServer({ DATABASE_URL: db.url, PORT: String(server.port) });

    expect(await (await fetch(`${server.url}/jwks`)).json()).toEqual(jwksBefore);
    // a fresh JWKS cache, as an API that starts after the restart would have
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: ORDERS, typ: 'at+jwt' });
    expect(payload.client_id).toBe('billing');
    const rp2 = await relyingParty(server.url, service.clientId, service.clientSecret);
    expect(await oidc.tokenIntrospection(rp2, opaque)).toMatchObject({ active: true, aud: LEDGER });

    // nothing secret was logged before the restart
    expect(logs).toContain('"path":"/token"');
    expect(logs).not.toContain(service.clientSecret);
    for (const token of issued) expect(logs).not.toContain(token);
  });
});
