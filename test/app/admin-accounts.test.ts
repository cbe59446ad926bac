import * as oidc from 'openid-client';
import { databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess, type FakeUpstream, type InProcess, type TestClient } from '../support/in-process.js';
import { contract, type Answer } from '../support/openapi-contract.js';
import { createClient } from '../../src/services/clients.js';
import { grantRole } from '../../src/services/roles.js';

/**
 * The accounts endpoints of the management API, with a person who signed in
 * through an upstream: list, show, disable (their tokens end at once), enable,
 * delete (nothing personal left), each answer validated against the OpenAPI
 * document, and the admin client as the actor in the trail.
 */

describe.each(databaseKinds())('the management API for accounts on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let app: TestClient;
  let admin: string;
  let check: ReturnType<typeof contract>;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    app = await server.createClient({ name: 'Some App', firstParty: true });
    const { secret } = await createClient(server.database.prisma, {
      clientId: 'ops', name: 'Ops', resources: [`${server.url}/admin/v1`], scopes: ['admin:read', 'admin:write'],
    });
    await server.app.cache.refresh();
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin/v1`, scope: 'admin:read admin:write' }),
    });
    admin = ((await res.json()) as { access_token: string }).access_token;
    check = contract(await (await fetch(`${server.url}/admin/v1/openapi.json`)).json());
  });
  afterAll(() => server?.close());

  async function call(method: string, path: string): Promise<Answer> {
    const res = await fetch(`${server.url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${admin}` } });
    const text = await res.text();
    const answer = { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : '' };
    check.validate(method, path, answer);
    return answer;
  }

  it('lists, shows, disables, enables and deletes an account', async () => {
    acme.signInAs({ subject: 'person-1', email: 'person@example.com', emailVerified: true, name: 'A Person', username: 'aperson' });
    const { authorization, callback } = await signIn(server.browser(), app, acme, { scope: 'openid offline_access', prompt: 'consent' });
    const { rp, tokens } = await exchangeCode(server, authorization, callback);
    const sub = tokens.claims()!.sub;

    const listed = await call('GET', '/accounts?email=person@example.com');
    expect(listed.body).toEqual({ items: [expect.objectContaining({ id: sub, email: 'person@example.com', disabled: false, providers: ['acme'] })], next: null });
    const shown = await call('GET', `/accounts/${sub}`);
    expect(shown.body).toMatchObject({ id: sub, role: null, identities: [expect.objectContaining({ provider: 'acme', subject: 'person-1' })], sessions: { active: 1 } });
    // the console role, as `accounts grant-role` sets it, in the list and the details
    await grantRole(server.database.prisma, sub, 'viewer');
    expect((await call('GET', `/accounts/${sub}`)).body).toMatchObject({ role: 'viewer' });
    expect((await call('GET', '/accounts?email=person@example.com')).body.items).toEqual([expect.objectContaining({ id: sub, role: 'viewer' })]);
    expect((await call('GET', '/accounts/nobody')).status).toBe(404);

    const disabled = await call('POST', `/accounts/${sub}/disable`);
    expect(disabled.body).toMatchObject({ id: sub, changed: true, endedArtifacts: expect.any(Number) });
    expect(disabled.body.endedArtifacts).toBeGreaterThan(0);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await call('POST', `/accounts/${sub}/disable`)).body).toMatchObject({ changed: false });
    expect((await call('GET', '/accounts?disabled=true')).body.items.map((a: { id: string }) => a.id)).toEqual([sub]);
    expect((await call('POST', `/accounts/${sub}/enable`)).body).toMatchObject({ changed: true, disabledAt: null });

    const deleted = await call('DELETE', `/accounts/${sub}`);
    expect(deleted.body).toMatchObject({ id: sub, identities: 1 });
    expect((await call('GET', `/accounts/${sub}`)).status).toBe(404);
    // nothing personal is left anywhere, the trail included
    const db = server.database.prisma;
    const everything = JSON.stringify([
      await db.account.findMany(), await db.federatedIdentity.findMany(), await db.consent.findMany(), await db.oidcPayload.findMany(), await db.auditEvent.findMany(),
    ]);
    for (const personal of ['person@example.com', 'A Person', 'aperson', 'person-1']) expect(everything).not.toContain(personal);
    const trail = await db.auditEvent.findMany({ where: { targetId: sub } });
    expect(trail.every((e) => e.address === null || e.actorType === 'admin-client')).toBe(true);
    expect(trail.filter((e) => e.actorType === 'admin-client').map((e) => e.action).sort()).toEqual(['account.deleted', 'account.disabled', 'account.enabled']);
  });

  it('takes DPoP-bound tokens too, only with their proof', async () => {
    const { secret } = await createClient(server.database.prisma, {
      clientId: 'ops-dpop', name: 'Ops (DPoP)', resources: [`${server.url}/admin/v1`], scopes: ['admin:read'],
    });
    await server.app.cache.refresh();
    const rp = await oidc.discovery(new URL(server.url), 'ops-dpop', undefined, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: `${server.url}/admin/v1`, scope: 'admin:read' }, { DPoP: dpop });
    expect(tokens.token_type).toBe('dpop');
    const withProof = await oidc.fetchProtectedResource(rp, tokens.access_token, new URL(`${server.url}/admin/v1/accounts`), 'GET', undefined, undefined, { DPoP: dpop });
    expect(withProof.status).toBe(200);
    const asBearer = await fetch(`${server.url}/admin/v1/accounts`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('content-type')).toContain('application/problem+json');
  });

  it('answered every accounts operation with a documented status', () => {
    const called = new Set([...check.checked].map((c) => c.split(' ').slice(0, 2).join(' ')));
    for (const op of ['GET /accounts', 'GET /accounts/{id}', 'DELETE /accounts/{id}', 'POST /accounts/{id}/disable', 'POST /accounts/{id}/enable']) expect(called).toContain(op);
  });
});
