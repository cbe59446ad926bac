import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import {
  databaseKinds, exchangeCode, fakeUpstream, relyingParty, signIn, startInProcess,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { createApi } from '../../src/services/apis.js';
import { digestOf } from '../../src/storage/digest.js';

/**
 * Whoever reads the database (a backup, a replica, a leaked dump) finds no
 * credential it could use (issue 17): after every flow, on both databases,
 * a dump of every table holds none of the values the flows were handed, and a
 * refresh token copied from the database is refused at /token.
 */

const OPAQUE_API = 'https://opaque.example.com';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe.each(databaseKinds())('credentials at rest on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let app: TestClient;
  /** every credential a flow handed out, by what it is */
  const handed: Record<string, string> = {};

  /** every row of every table, as text */
  async function dump(): Promise<string> {
    const p = server.database.prisma;
    const tables = await Promise.all([
      p.oidcPayload.findMany(), p.client.findMany(), p.resourceServer.findMany(), p.account.findMany(), p.federatedIdentity.findMany(),
      p.consent.findMany(), p.auditEvent.findMany(), p.webhook.findMany(), p.webhookDelivery.findMany(), p.lease.findMany(),
    ]);
    return JSON.stringify(tables);
  }

  const basic = (c: { clientId: string; clientSecret: string }) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;
  const post = async (path: string, body: Record<string, string>, authorization = basic(app)) => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization }, body: new URLSearchParams(body) });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    await createApi(server.database.prisma, { identifier: OPAQUE_API, name: 'Opaque', scopes: ['o:read'], tokenFormat: 'opaque' });
    await server.app.cache.refresh();
    app = await server.createClient({ name: 'Everything', firstParty: true, resources: [OPAQUE_API], grantTypes: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT] });

    // sign-in: interaction, session, code, opaque access token, refresh token
    acme.signInAs({ subject: `rest-${randomUUID()}`, email: 'rest@example.com', emailVerified: true });
    const browser = server.browser();
    const { authorization, callback } = await signIn(browser, app, acme, { scope: 'openid offline_access o:read', resource: OPAQUE_API, prompt: 'consent' });
    handed.interaction = authorization.uid;
    handed.session = browser.cookie('_session')!;
    handed.code = callback.searchParams.get('code')!;
    const { rp, tokens } = await exchangeCode(server, authorization, callback);
    handed.accessToken = tokens.access_token;
    handed.refreshToken = tokens.refresh_token!;
    // a rotation (and its kept answer for the grace period)
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    handed.rotatedAccessToken = refreshed.access_token;
    handed.rotatedRefreshToken = refreshed.refresh_token!;
    // client credentials for the opaque API
    handed.clientCredentials = (await post('/token', { grant_type: 'client_credentials', resource: OPAQUE_API, scope: 'o:read' })).body.access_token;
    // the device flow's codes, and a pushed authorization request
    const device = await post('/device/auth', { client_id: app.clientId, scope: 'openid' });
    handed.deviceCode = device.body.device_code;
    handed.userCode = device.body.user_code;
    const par = await post('/request', { client_id: app.clientId, response_type: 'code', redirect_uri: app.redirectUri, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    handed.requestUri = par.body.request_uri.split(':').pop()!;
    // dynamic registration: the initial access token, the registration access token, the client's secret
    handed.initialAccessToken = await server.initialAccessToken();
    const reg = await fetch(`${server.url}/reg`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${handed.initialAccessToken}` },
      body: JSON.stringify({ redirect_uris: ['https://registered.example.com/cb'], client_name: 'Registered' }),
    });
    const registered = (await reg.json()) as Record<string, string>;
    handed.registrationAccessToken = registered.registration_access_token;
    handed.registeredSecret = registered.client_secret;
  });
  afterAll(() => server?.close());

  it('handed out every kind of credential (so the check below has something to find)', () => {
    for (const [what, value] of Object.entries(handed)) expect([what, typeof value === 'string' && value.length >= 8]).toEqual([what, true]);
    expect(Object.keys(handed)).toHaveLength(14);
  });

  it('stores none of them: no table holds a value a flow handed out', async () => {
    const text = await dump();
    const found = Object.entries(handed).filter(([, value]) => text.includes(value)).map(([what]) => what);
    expect(found).toEqual([]);
    // the user code is also looked for as typed without its dash, and as plain digests (20^8 codes can be tried offline)
    for (const code of [handed.userCode, handed.userCode.replace('-', '')]) {
      expect(text).not.toContain(code.replace('-', ''));
      expect(text).not.toContain(digestOf(code));
    }
  });

  it('refuses a refresh token copied from the database at /token', async () => {
    const rows = await server.database.prisma.oidcPayload.findMany({ where: { type: 'RefreshToken' }, select: { id: true } });
    expect(rows.length).toBeGreaterThan(0);
    for (const { id } of rows) {
      const answer = await post('/token', { grant_type: 'refresh_token', refresh_token: id });
      expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    }
    // while the real one still works
    const rp = await relyingParty(server, app);
    expect((await oidc.refreshTokenGrant(rp, handed.rotatedRefreshToken)).access_token).toEqual(expect.any(String));
  });
});
