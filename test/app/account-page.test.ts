import * as oidc from 'openid-client';
import {
  authorize, backLinkOf, csrfOf, databaseKinds, exchangeCode, fakeUpstream, relyingParty, signIn, startInProcess, textOf,
  type Browser, type FakeUpstream, type InProcess, type Page, type TestClient,
} from '../support/in-process.js';
import { listAudit } from '../../src/services/audit.js';
import { ACCOUNT_CLIENT_ID } from '../../src/services/built-in-clients.js';

/**
 * The self-service account page (/account), in-process over HTTP: signing in
 * to it through the built-in client, linking another upstream (and the refusal
 * when the identity belongs to someone else), the apps with access and
 * withdrawing one, signing out everywhere, and the CSRF check of every POST.
 */

const API = 'https://api.example.com';

describe.each(databaseKinds())('the account page on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let globex: FakeUpstream;
  let client: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    globex = fakeUpstream('globex', 'Globex ID');
    server = await startInProcess({ kind, upstreams: [acme, globex] });
    await server.createApi(API, 'Things API', ['read:things', 'write:things']);
    client = await server.createClient({ name: 'Sample App', resources: [API] });
  });
  afterAll(() => server?.close());

  const prisma = () => server.database.prisma;
  const identitiesOf = (accountId: string) =>
    prisma().federatedIdentity.findMany({ where: { accountId }, orderBy: { provider: 'asc' }, select: { provider: true, subject: true } });
  const sessionsOf = (accountId: string) => prisma().oidcPayload.count({ where: { type: 'Session', accountId } });
  const accountOf = async (provider: string, subject: string) =>
    (await prisma().federatedIdentity.findUnique({ where: { provider_subject: { provider, subject } } }))?.accountId;
  /** "How you sign in": the provider names listed */
  const listedIdentities = (page: Page) => [...page.text.matchAll(/<li>\s*<strong>([^<]+)<\/strong>/g)].map((m) => m[1]);
  const listedApps = (page: Page) => [...page.text.matchAll(/<h3 class="wrap">([^<]+)<\/h3>/g)].map((m) => m[1]);

  /** A fresh browser signs in on /account through `upstream`; returns it on the page. */
  async function signInOnAccountPage(upstream: FakeUpstream, b: Browser = server.browser()) {
    const start = await b.get('/account');
    expect(start.status).toBe(302);
    const toAuth = new URL(start.location!);
    const { last: login } = await b.follow(start);
    const uid = /^\/interaction\/([^/?]+)$/.exec(new URL(login.url).pathname)?.[1];
    expect(uid).toBeDefined();
    await b.post(`/interaction/${uid}/login/${upstream.id}`, { csrf: csrfOf(login) });
    const { last: page, hops } = await b.follow(await b.get(upstream.redirectBack()));
    return { b, page, toAuth, login, hops };
  }

  it('sends a browser that is not signed in through /auth and the login page, and back to the page', async () => {
    acme.signInAs({ subject: 'ada', email: 'Ada@Example.com', emailVerified: true, name: 'Ada Lovelace' });
    const { b, page, toAuth, login, hops } = await signInOnAccountPage(acme);

    // a normal authorization request of the built-in client, code + PKCE, state in a cookie
    expect(`${toAuth.origin}${toAuth.pathname}`).toBe(`${server.url}/auth`);
    expect(Object.fromEntries(toAuth.searchParams)).toEqual({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      redirect_uri: `${server.url}/account`,
      scope: 'openid',
      state: expect.stringMatching(/^[A-Za-z0-9_-]{32,}$/),
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
    });
    expect(textOf(login)).toContain('Continue with Acme SSO');

    // oidc-provider sent the browser back to /account with a code, which was checked and destroyed
    const back = hops.find((h) => new URL(h.url).pathname === '/account' && new URL(h.url).searchParams.has('code'));
    expect(back).toBeDefined();
    expect(new URL(back!.url).searchParams.get('state')).toBe(toAuth.searchParams.get('state'));
    expect(back!.status).toBe(303);
    expect(back!.location).toBe('/account');
    const code = new URL(back!.url).searchParams.get('code')!;
    expect(await server.app.provider.AuthorizationCode.find(code)).toBeUndefined();
    expect(b.cookie('gatehouse.account-signin', '/account')).toBeUndefined();

    expect(page.status).toBe(200);
    expect(new URL(page.url).pathname).toBe('/account');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(textOf(page)).toContain('Your account');
    expect(textOf(page)).toContain('Signed in as Ada Lovelace');
    expect(listedIdentities(page)).toEqual(['Acme SSO']);
    expect(textOf(page)).toContain('ada@example.com');
    expect(textOf(page)).toContain('No app has access to your account.');
    expect(csrfOf(page)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // the built-in client is not one of "your apps"
    expect(page.text).not.toContain(ACCOUNT_CLIENT_ID);

    // signed in now: the next visit shows the page without a round trip
    const again = await b.get('/account');
    expect(again.status).toBe(200);
    expect(listedIdentities(again)).toEqual(['Acme SSO']);
  });

  it('refuses a return to /account whose state is not this browser\'s', async () => {
    const b = server.browser();
    await b.get('/account'); // sets the state cookie
    const res = await b.get('/account?code=forged&state=not-the-state');
    expect(res.status).toBe(400);
    expect(textOf(res)).toContain('This link has expired');
    expect(backLinkOf(res)).toBe('/account');
  });

  it('says so when the person cancels signing in to the page, with a way back', async () => {
    const b = server.browser();
    const { last: login } = await b.follow(await b.get('/account'));
    const uid = /^\/interaction\/([^/?]+)$/.exec(new URL(login.url).pathname)![1];
    const { last, hops } = await b.follow(await b.post(`/interaction/${uid}/abort`, { csrf: csrfOf(login) }));
    expect(new URL(hops.at(-1)!.url).searchParams.get('error')).toBe('access_denied');
    expect(last.status).toBe(400);
    expect(textOf(last)).toContain('Sign-in cancelled');
    expect(backLinkOf(last)).toBe('/account');
    expect(last.text).not.toContain('name="csrf"');
  });

  it('links another upstream: its round trip comes back to the account page, which lists both', async () => {
    acme.signInAs({ subject: 'grace', email: 'grace@example.com', emailVerified: true, name: 'Grace Hopper' });
    const { b, page } = await signInOnAccountPage(acme);
    const accountId = (await accountOf('acme', 'grace'))!;
    expect(textOf(page)).toContain('Link Globex ID');

    globex.signInAs({ subject: 'grace-at-globex', email: 'grace@globex.example', emailVerified: false, name: 'Grace Hopper' });
    const start = await b.post('/account/link/globex', { csrf: csrfOf(page) });
    expect(start.status).toBe(302);
    const started = globex.started.at(-1)!;
    expect(start.location).toBe(started.url.href);
    // the redirect URI registered at the upstream, as for signing in
    expect(started.redirectUri).toBe(`${server.url}/oauth2/globex/callback`);
    expect(JSON.parse(b.cookie('gatehouse.upstream')!)).toEqual({ purpose: 'link', accountId, provider: 'globex', ...started.checks });

    const back = globex.redirectBack();
    const bounce = await b.get(back);
    expect(bounce.status).toBe(302);
    expect(bounce.location).toBe(`/account/link/globex/callback${back.search}`);
    const linked = await b.get(bounce.location!);
    expect(linked.status).toBe(303);
    expect(linked.location).toBe('/account?linked=globex');
    expect(globex.finished.at(-1)!.checks).toEqual(started.checks);
    expect(b.cookie('gatehouse.upstream')).toBeUndefined(); // used up

    const shown = await b.get(linked.location!);
    expect(listedIdentities(shown)).toEqual(['Acme SSO', 'Globex ID']);
    expect(textOf(shown)).toContain('Globex ID is now linked to your account.');
    expect(textOf(shown)).toContain('grace@globex.example');
    expect(await identitiesOf(accountId)).toEqual([{ provider: 'acme', subject: 'grace' }, { provider: 'globex', subject: 'grace-at-globex' }]);
    const [event] = await listAudit(prisma(), { action: 'account.linked', target: accountId });
    expect(event).toMatchObject({ actorType: 'account', actorId: accountId, targetType: 'account', targetId: accountId, details: { provider: 'globex' } });
    expect(event.address).toMatch(/127\.0\.0\.1|::1/);

    // the new identity signs in to the same account
    const viaGlobex = await signInOnAccountPage(globex);
    expect(listedIdentities(viaGlobex.page)).toEqual(['Acme SSO', 'Globex ID']);
    expect(textOf(viaGlobex.page)).toContain('Signed in as Grace Hopper');

    // linking the same identity again changes nothing
    await b.post('/account/link/globex', { csrf: csrfOf(shown) });
    const relinked = await b.follow(await b.get(globex.redirectBack()));
    expect(relinked.last.status).toBe(200);
    expect(textOf(relinked.last)).toContain('That Globex ID account was already linked to yours.');
    expect(await identitiesOf(accountId)).toHaveLength(2);
    expect(await listAudit(prisma(), { action: 'account.linked', target: accountId })).toHaveLength(1);
  });

  it('refuses to link an identity that belongs to another account, and changes nothing', async () => {
    globex.signInAs({ subject: 'taken', email: 'taken@globex.example' });
    await signInOnAccountPage(globex); // the identity's own account
    const owner = (await accountOf('globex', 'taken'))!;

    acme.signInAs({ subject: 'linus', name: 'Linus' });
    const { b, page } = await signInOnAccountPage(acme);
    const accountId = (await accountOf('acme', 'linus'))!;
    expect(accountId).not.toBe(owner);
    const linkedBefore = (await listAudit(prisma(), { action: 'account.linked' })).length;

    await b.post('/account/link/globex', { csrf: csrfOf(page) });
    const { last: refused } = await b.follow(await b.get(globex.redirectBack()));
    expect(refused.status).toBe(409);
    expect(textOf(refused)).toContain('This Globex ID account is already linked to another Gatehouse account.');
    expect(backLinkOf(refused)).toBe('/account');
    expect(await identitiesOf(accountId)).toEqual([{ provider: 'acme', subject: 'linus' }]);
    expect(await identitiesOf(owner)).toEqual([{ provider: 'globex', subject: 'taken' }]);
    expect(await listAudit(prisma(), { action: 'account.linked' })).toHaveLength(linkedBefore);
    expect(listedIdentities(await b.get('/account'))).toEqual(['Acme SSO']);
  });

  it('shows an upstream failure while linking with a way back to the account page', async () => {
    acme.signInAs({ subject: 'fails' });
    const { b, page } = await signInOnAccountPage(acme);
    await b.post('/account/link/globex', { csrf: csrfOf(page) });
    const { last } = await b.follow(await b.get(globex.redirectBack({ error: 'access_denied', state: globex.started.at(-1)!.checks.state })));
    expect(last.status).toBe(400);
    expect(textOf(last)).toContain('You cancelled linking Globex ID.');
    expect(backLinkOf(last)).toBe('/account');
    expect(await identitiesOf((await accountOf('acme', 'fails'))!)).toHaveLength(1);
  });

  it('lists an app with a remembered consent and what it may do; withdrawing ends its tokens at once', async () => {
    acme.signInAs({ subject: 'mary', email: 'mary@example.com', emailVerified: true, name: 'Mary' });
    const b = server.browser();
    const { authorization, callback } = await signIn(b, client, acme, {
      scope: 'openid email offline_access read:things', resource: API, prompt: 'consent',
    });
    const { tokens } = await exchangeCode(server, authorization, callback);
    const accountId = tokens.claims()!.sub;
    expect(tokens.refresh_token).toEqual(expect.any(String));

    // the app's sign-in made the session: no round trip
    const page = await b.get('/account');
    expect(page.status).toBe(200);
    expect(listedApps(page)).toEqual(['Sample App']);
    const text = textOf(page);
    expect(text).toContain('Know who you are (your account ID)');
    expect(text).toContain('See your email address');
    expect(text).toContain('Stay signed in to the app when you are away');
    expect(text).not.toContain('See your name, username and picture');
    expect(text).toContain('Use Things API on your behalf: read:things');
    expect(text).not.toContain('write:things');

    const withdrawn = await b.post('/account/apps/withdraw', { csrf: csrfOf(page), client: client.clientId });
    expect(withdrawn.status).toBe(303);
    expect(withdrawn.location).toBe('/account?withdrawn=1');
    const after = await b.get(withdrawn.location!);
    expect(listedApps(after)).toEqual([]);
    expect(textOf(after)).toContain('Access withdrawn.');
    expect(await prisma().consent.count({ where: { accountId, clientId: client.clientId } })).toBe(0);
    const rp = await relyingParty(server, client);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const [event] = await listAudit(prisma(), { action: 'consent.withdrawn', target: `${accountId}/${client.clientId}` });
    expect(event).toMatchObject({ actorType: 'account', actorId: accountId });

    // and the app has to ask again
    const asked = await authorize(b, client);
    expect(textOf(await b.get(`/interaction/${asked.uid}`))).toContain('Allow Sample App?');
  });

  it('signs out everywhere: every session of the account ends, apps keep their access', async () => {
    acme.signInAs({ subject: 'sam', name: 'Sam' });
    const phone = server.browser();
    const { authorization, callback } = await signIn(phone, client, acme, { scope: 'openid offline_access', prompt: 'consent' });
    const { tokens } = await exchangeCode(server, authorization, callback);
    const { b: laptop, page } = await signInOnAccountPage(acme);
    const accountId = (await accountOf('acme', 'sam'))!;
    const someoneElse = (await accountOf('acme', 'ada'))!;
    const othersBefore = await sessionsOf(someoneElse);
    expect(await sessionsOf(accountId)).toBe(2);

    const res = await laptop.post('/account/sign-out-everywhere', { csrf: csrfOf(page) });
    expect(res.status).toBe(200);
    expect(textOf(res)).toContain('You are signed out');
    expect(textOf(res)).toContain('2 sessions ended');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await sessionsOf(accountId)).toBe(0);
    expect(await sessionsOf(someoneElse)).toBe(othersBefore);
    // in the trail, as the person's own doing
    expect(await prisma().auditEvent.findMany({ where: { action: 'account.signed_out_everywhere', targetId: accountId } })).toEqual([
      expect.objectContaining({ actorType: 'account', actorId: accountId, details: { endedSessions: 2 } }),
    ]);

    // both browsers have to sign in again
    for (const b of [laptop, phone]) {
      expect((await b.get('/account')).status).toBe(302);
      const { uid } = await authorize(b, client);
      expect(textOf(await b.get(`/interaction/${uid}`))).toContain('Continue with Acme SSO');
    }
    // the app's refresh token still works: withdrawing is per app
    const rp = await relyingParty(server, client);
    expect((await oidc.refreshTokenGrant(rp, tokens.refresh_token!)).access_token).toEqual(expect.any(String));
  });

  it('says "signed out" for a session whose account was deleted', async () => {
    acme.signInAs({ subject: 'gone' });
    const { b } = await signInOnAccountPage(acme);
    await prisma().account.delete({ where: { id: (await accountOf('acme', 'gone'))! } });
    const page = await b.get('/account');
    expect(page.status).toBe(200);
    expect(textOf(page)).toContain('You are signed out');
    expect(page.text).toContain('href="/account/sign-in"');
    expect(page.text).not.toContain('name="csrf"');
    // its way back in asks to sign in, even with the old session
    const again = await b.get('/account/sign-in');
    expect(new URL(again.location!).searchParams.get('prompt')).toBe('login');
  });

  describe('refuses a POST whose CSRF token is not right (403), and changes nothing', () => {
    const forgeries: [string, (token: string) => Record<string, string>][] = [
      ['missing', () => ({})],
      ['wrong', () => ({ csrf: 'not-the-token' })],
      ['of the right length with other bytes', (t) => ({ csrf: `${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}` })],
    ];

    it.each(forgeries)('token %s', async (_, forge) => {
      acme.signInAs({ subject: 'csrf-victim' });
      const b = server.browser();
      const { authorization, callback } = await signIn(b, client, acme, { scope: 'openid offline_access', prompt: 'consent' });
      await exchangeCode(server, authorization, callback);
      const accountId = (await accountOf('acme', 'csrf-victim'))!;
      const page = await b.get('/account');
      const token = csrfOf(page);
      const sessions = await sessionsOf(accountId);
      const consents = await prisma().consent.count({ where: { accountId } });
      const started = globex.started.length;

      for (const [path, fields] of [
        ['/account/link/globex', {}],
        ['/account/apps/withdraw', { client: client.clientId }],
        ['/account/sign-out-everywhere', {}],
      ] as const) {
        const res = await b.post(path, { ...fields, ...forge(token) });
        expect([path, res.status]).toEqual([path, 403]);
        expect(textOf(res)).toContain('This form has expired');
        expect(res.location).toBeNull();
      }
      expect(globex.started).toHaveLength(started);
      expect(b.cookie('gatehouse.upstream')).toBeUndefined();
      expect(await sessionsOf(accountId)).toBe(sessions);
      expect(await prisma().consent.count({ where: { accountId } })).toBe(consents);
      expect(listedApps(await b.get('/account'))).toEqual(['Sample App']);
    });

    it('a token of another account', async () => {
      acme.signInAs({ subject: 'mallory' });
      const mallory = await signInOnAccountPage(acme);
      acme.signInAs({ subject: 'alice' });
      const alice = server.browser();
      await signIn(alice, client, acme, { scope: 'openid', prompt: 'consent' });
      const aliceId = (await accountOf('acme', 'alice'))!;
      expect(csrfOf(await alice.get('/account'))).not.toBe(csrfOf(mallory.page));
      const res = await alice.post('/account/sign-out-everywhere', { csrf: csrfOf(mallory.page) });
      expect(res.status).toBe(403);
      expect(await sessionsOf(aliceId)).toBe(1);
    });

    it('a signed-out browser', async () => {
      const res = await server.browser().post('/account/sign-out-everywhere', { csrf: 'x'.repeat(43) });
      expect(res.status).toBe(403);
    });
  });
});
