import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import {
  databaseKinds, exchangeCode, fakeUpstream, jsonRequest, signIn, startInProcess,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { createClient, deleteClient, rotateClientSecret, updateClient } from '../../src/services/clients.js';

/**
 * The management plane as an outsider attacks it (issue 17), on both
 * databases: each finding of the review is an attack here that must fail.
 * Real HTTP to a server built with createApp, a real database, a real relying
 * party (openid-client) and a fake upstream for the person.
 */

const clientCredentials = async (server: InProcess, client: { clientId: string; clientSecret: string }, resource: string, scope: string) => {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token!;
};

const form = (server: InProcess, path: string, client: { clientId: string; clientSecret: string }, fields: Record<string, string>) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams(fields),
  });

/** a new second: a token issued now is after any change made before this */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() % 1000)));

describe.each(databaseKinds())('the management plane under attack on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let adminApi: string;

  /** a management client as an operator makes one */
  async function adminClient(scopes = ['admin:read', 'admin:write']) {
    const c = await server.createClient({ name: 'Ops', grantTypes: ['client_credentials'], resources: [adminApi] });
    if (scopes.length < 2) await updateClient(server.database.prisma, c.clientId, { scopes });
    await server.app.cache.refresh();
    return c;
  }

  const list = (token: string) => jsonRequest(`${adminApi}/clients`, { token });

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    // no polling: each test says when this node sees a change (cache.refresh), as another node would later
    server = await startInProcess({ kind, upstreams: [acme], env: { CHANGE_POLL_MS: '3600000' } });
    adminApi = `${server.url}/admin/v1`;
  });
  afterAll(() => server?.close());

  it('refuses a management token whose client was deleted, on its next request', async () => {
    const ops = await adminClient();
    const token = await clientCredentials(server, ops, adminApi, 'admin:read admin:write');
    expect((await list(token)).status).toBe(200);
    await deleteClient(server.database.prisma, ops.clientId);
    await server.app.cache.refresh();
    const refused = await list(token);
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toMatch(/no longer exists/);
    // and it cannot make itself a new admin client either
    const create = await jsonRequest(`${adminApi}/clients`, { method: 'POST', token, body: { name: 'Backdoor', grantTypes: ['client_credentials'], resources: [adminApi] } });
    expect(create.status).toBe(401);
    expect(await server.database.prisma.client.count({ where: { name: 'Backdoor' } })).toBe(0);
  });

  it("refuses a management token issued before its client's secret was rotated, and takes one issued after", async () => {
    const ops = await adminClient();
    const old = await clientCredentials(server, ops, adminApi, 'admin:read');
    const secret = await rotateClientSecret(server.database.prisma, ops.clientId);
    await server.app.cache.refresh();
    expect((await list(old)).status).toBe(401);
    await nextSecond();
    const fresh = await clientCredentials(server, { clientId: ops.clientId, clientSecret: secret }, adminApi, 'admin:read');
    expect((await list(fresh)).status).toBe(200);
  });

  it('refuses a management token of a deleted client when a client with the same id is made again', async () => {
    const ops = await adminClient();
    const token = await clientCredentials(server, ops, adminApi, 'admin:read');
    await deleteClient(server.database.prisma, ops.clientId);
    await createClient(server.database.prisma, { clientId: ops.clientId, name: 'Ops again', grantTypes: ['client_credentials'], resources: [adminApi] });
    await server.app.cache.refresh();
    expect((await list(token)).status).toBe(401);
  });

  it('refuses a management token minted with the old secret by a node that had not yet seen the rotation', async () => {
    const ops = await adminClient();
    // warm: this node now knows the old secret
    await clientCredentials(server, ops, adminApi, 'admin:read');
    await rotateClientSecret(server.database.prisma, ops.clientId);
    // the node has not polled yet: the old secret still gets a token, in a later second than the rotation
    await nextSecond();
    const stale = await clientCredentials(server, ops, adminApi, 'admin:read');
    await server.app.cache.refresh();
    const refused = await list(stale);
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toMatch(/earlier credentials/);
  });

  it('refuses a management token once its client lost the scope or the API', async () => {
    const ops = await adminClient();
    const token = await clientCredentials(server, ops, adminApi, 'admin:read admin:write');
    await updateClient(server.database.prisma, ops.clientId, { scopes: ['admin:read'] });
    await server.app.cache.refresh();
    expect((await list(token)).status).toBe(200);
    const write = await jsonRequest(`${adminApi}/apis`, { method: 'POST', token, body: { identifier: 'https://cut.example.com', name: 'Cut', scopes: ['a'] } });
    expect(write.status).toBe(403);
    await updateClient(server.database.prisma, ops.clientId, { resources: [] , scopes: [] });
    await server.app.cache.refresh();
    expect((await list(token)).status).toBe(403);
  });

  it('honours RFC 7009 revocation of a JWT management token, and introspects it truthfully', async () => {
    const ops = await adminClient();
    const token = await clientCredentials(server, ops, adminApi, 'admin:read');
    const before = await (await form(server, '/token/introspection', ops, { token })).json();
    expect(before).toMatchObject({ active: true, client_id: ops.clientId, sub: ops.clientId, aud: adminApi, scope: 'admin:read', token_type: 'Bearer' });
    expect((await form(server, '/token/revocation', ops, { token })).status).toBe(200);
    expect(await (await form(server, '/token/introspection', ops, { token })).json()).toEqual({ active: false });
    expect((await list(token)).status).toBe(401);
  });

  it("ignores another client's revocation of a token it was not issued", async () => {
    const ops = await adminClient();
    const stranger = await adminClient(['admin:read']);
    const token = await clientCredentials(server, ops, adminApi, 'admin:read');
    expect((await form(server, '/token/revocation', stranger, { token })).status).toBe(200);
    expect((await list(token)).status).toBe(200);
  });

  it('compares If-Match strongly (RFC 9110 §13.1.1): a weak ETag changes nothing', async () => {
    const ops = await adminClient();
    const token = await clientCredentials(server, ops, adminApi, 'admin:read admin:write');
    const target = await server.createClient({ name: 'Target', grantTypes: ['client_credentials'] });
    const read = await jsonRequest(`${adminApi}/clients/${target.clientId}`, { token });
    const etag = read.headers.get('etag')!;
    const put = (ifMatch: string) => fetch(`${adminApi}/clients/${target.clientId}`, {
      method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'if-match': ifMatch }, body: JSON.stringify({ name: 'Renamed' }),
    });
    expect((await put(`W/${etag}`)).status).toBe(412);
    expect((await jsonRequest(`${adminApi}/clients/${target.clientId}`, { token })).body.name).toBe('Target');
    expect((await put(etag)).status).toBe(200);
  });

  describe("a person's token", () => {
    let app: TestClient;
    beforeAll(async () => {
      // the obvious way to build a console: a web client an operator allows the management API
      app = await server.createClient({ name: 'Console', firstParty: true, resources: [adminApi] });
    });

    async function personToken(extra: Record<string, string> = {}) {
      acme.signInAs({ subject: `p-${randomUUID()}`, email: 'mallory@example.com', emailVerified: true });
      const { authorization, callback } = await signIn(server.browser(), app, acme, { scope: 'openid admin:write admin:read offline_access', resource: adminApi, prompt: 'consent', ...extra });
      return exchangeCode(server, authorization, callback);
    }

    it('is never an admin token, whatever its audience and scope', async () => {
      const { tokens } = await personToken();
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
      // the token really is for the management API with admin:write: only the rule refuses it
      expect(claims).toMatchObject({ aud: adminApi, scope: expect.stringContaining('admin:write') });
      const refused = await jsonRequest(`${adminApi}/clients`, { method: 'POST', token: tokens.access_token, body: { name: 'Mine', grantTypes: ['client_credentials'] } });
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/person/);
      expect(await server.database.prisma.client.count({ where: { name: 'Mine' } })).toBe(0);
    });

    it('introspects as active while its grant stands, and inactive once the app revoked it', async () => {
      const { rp, tokens } = await personToken();
      const active = await oidc.tokenIntrospection(rp, tokens.access_token);
      expect(active).toMatchObject({ active: true, client_id: app.clientId, aud: adminApi });
      expect(active.grant_id).toBeUndefined();
      await oidc.tokenRevocation(rp, tokens.access_token);
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
      // as for a stored access token, the grant ended with it: the refresh token too
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });
});
