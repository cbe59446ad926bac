import * as oidc from 'openid-client';
import {
  authorize, backLinkOf, chooseUpstream, csrfOf, databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess, testClock, textOf,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';

/** The interaction routes (login page, upstream round trip, consent, abort), in-process. */

const providersOn = (text: string) => [...text.matchAll(/Continue with ([^<]+)</g)].map((m) => m[1].trim());
const uidOf = (url: string) => /^\/interaction\/([^/?]+)$/.exec(new URL(url).pathname)?.[1];

describe.each(databaseKinds())('signing in through an upstream on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    client = await server.createClient({ name: 'Sample App' });
  });
  afterAll(() => server?.close());

  it('comes back from the upstream, creates the account, asks consent, and the app exchanges its code', async () => {
    acme.signInAs({ subject: 'acme-42', email: 'Ada@Example.com', emailVerified: true, name: 'Ada Lovelace', username: 'ada' });
    const b = server.browser();
    const authorization = await authorize(b, client);
    await chooseUpstream(b, authorization.uid, 'acme');

    // the upstream sends the browser to /oauth2/acme/callback, which bounces into the interaction
    const back = acme.redirectBack();
    const bounce = await b.get(back);
    expect(bounce.status).toBe(302);
    expect(bounce.location).toBe(`/interaction/${authorization.uid}/callback/acme${back.search}`);
    const signedIn = await b.get(bounce.location!);
    expect(signedIn.status).toBe(303);
    expect(acme.finished).toHaveLength(1);
    expect(acme.finished[0].callbackUrl.href).toBe(back.href);
    expect(acme.finished[0].checks).toEqual(acme.started[0].checks);
    expect(b.cookie('gatehouse.upstream')).toBeUndefined(); // used up

    const identity = await server.database.prisma.federatedIdentity.findUnique({
      where: { provider_subject: { provider: 'acme', subject: 'acme-42' } },
      include: { account: true },
    });
    expect(identity?.account).toMatchObject({ email: 'ada@example.com', emailVerified: true, name: 'Ada Lovelace', username: 'ada' });

    const { last: consent } = await b.follow(signedIn);
    expect(consent.status).toBe(200);
    expect(textOf(consent)).toContain('Allow Sample App?');
    const done = await b.post(`/interaction/${uidOf(consent.url)}/confirm`, { csrf: csrfOf(consent) });
    expect(done.status).toBe(303);
    const { last } = await b.follow(done);
    const callback = new URL(last.location!);
    expect(`${callback.origin}${callback.pathname}`).toBe(client.redirectUri);
    expect(callback.searchParams.get('state')).toBe(authorization.state);

    const { rp, tokens } = await exchangeCode(server, authorization, callback);
    const accountId = identity!.accountId;
    expect(tokens.claims()).toMatchObject({ iss: server.url, aud: client.clientId, sub: accountId });
    expect(await oidc.fetchUserInfo(rp, tokens.access_token, accountId)).toMatchObject({ email: 'ada@example.com', name: 'Ada Lovelace' });
    const consentRow = await server.database.prisma.consent.findUnique({ where: { accountId_clientId: { accountId, clientId: client.clientId } } });
    expect(consentRow?.grantId).toEqual(expect.any(String));
  });

  it('signs a returning person into the same account, without asking consent again', async () => {
    acme.signInAs({ subject: 'acme-7', name: 'Grace' });
    const first = await signIn(server.browser(), client, acme);
    const second = await signIn(server.browser(), client, acme);
    expect([first.askedConsent, second.askedConsent]).toEqual([true, false]);
    const a = (await exchangeCode(server, first.authorization, first.callback)).tokens.claims()!.sub;
    const b = (await exchangeCode(server, second.authorization, second.callback)).tokens.claims()!.sub;
    expect(b).toBe(a);
    expect(await server.database.prisma.federatedIdentity.count({ where: { provider: 'acme', subject: 'acme-7' } })).toBe(1);
  });
});

describe('interaction routes', () => {
  let server: InProcess;
  let acme: FakeUpstream;
  let globex: FakeUpstream;
  let client: TestClient;
  const clock = testClock();

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    globex = fakeUpstream('globex', 'Globex ID');
    server = await startInProcess({ upstreams: [acme, globex], now: clock.now });
    client = await server.createClient({ name: 'Sample App' });
  });
  afterAll(() => server?.close());

  /** A browser at the login page of a fresh interaction. */
  async function atLogin() {
    const b = server.browser();
    const authorization = await authorize(b, client);
    const page = await b.get(`/interaction/${authorization.uid}`);
    return { b, uid: authorization.uid, authorization, page, csrf: csrfOf(page) };
  }

  it('shows a login page that lists the upstreams and carries a CSRF token, no-store, with a CSP', async () => {
    const { b, uid, page, csrf } = await atLogin();
    expect(page.status).toBe(200);
    expect(providersOn(page.text)).toEqual(['Acme SSO', 'Globex ID']);
    expect(textOf(page)).toContain('Sample App wants you to sign in.');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // the token's cookie is scoped to this interaction
    // the cookie names its interaction, then carries the token
    expect(b.cookie('gatehouse.csrf', `/interaction/${uid}`)).toBe(`${uid}.${csrf}`);
    expect(b.cookie('gatehouse.csrf', '/')).toBeUndefined();
    // and reused while it lives
    expect(csrfOf(await b.get(`/interaction/${uid}`))).toBe(csrf);
  });

  it('sends the browser to the chosen upstream with state, nonce and PKCE, and keeps them in the pending cookie', async () => {
    const { b, uid } = await atLogin();
    const before = acme.started.length;
    const res = await chooseUpstream(b, uid, 'acme');
    expect([302, 303]).toContain(res.status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(acme.started).toHaveLength(before + 1);
    const started = acme.started.at(-1)!;
    expect(res.location).toBe(started.url.href);
    expect(started.redirectUri).toBe(`${server.url}/oauth2/acme/callback`);
    expect(started.checks).toEqual({
      state: expect.stringMatching(/^[A-Za-z0-9_-]{32,}$/),
      nonce: expect.stringMatching(/^[A-Za-z0-9_-]{32,}$/),
      codeVerifier: expect.stringMatching(/^[A-Za-z0-9_-]{43,128}$/),
    });
    expect(new Set(Object.values(started.checks)).size).toBe(3);
    const pending = b.cookie('gatehouse.upstream', '/');
    expect(pending).toBeDefined();
    expect(JSON.parse(pending!)).toEqual({ uid, provider: 'acme', ...started.checks, startedAt: expect.any(Number) });
    // a second attempt gets fresh values
    await chooseUpstream(b, uid, 'acme');
    expect(acme.started.at(-1)!.checks.state).not.toBe(started.checks.state);
    expect(acme.started.at(-1)!.checks.codeVerifier).not.toBe(started.checks.codeVerifier);
  });

  it('names on the consent page the API the app asks for, with its scopes', async () => {
    await server.createApi('https://api.example.com', 'Things API', ['read:things', 'write:things']);
    const withApi = await server.createClient({ name: 'API App', resources: ['https://api.example.com'] });
    const b = server.browser();
    const { uid } = await authorize(b, withApi, { scope: 'openid read:things', resource: 'https://api.example.com' });
    await chooseUpstream(b, uid, 'acme');
    const { last: consent } = await b.follow(await b.get(acme.redirectBack()));
    expect(consent.status).toBe(200);
    expect(textOf(consent)).toContain('Allow API App?');
    expect(textOf(consent)).toContain('Use Things API on your behalf: read:things');
    expect(textOf(consent)).not.toContain('write:things');
  });

  it('sends access_denied to the app when the person cancels', async () => {
    const { b, uid, authorization, csrf } = await atLogin();
    const aborted = await b.post(`/interaction/${uid}/abort`, { csrf });
    expect(aborted.status).toBe(303);
    const { last } = await b.follow(aborted);
    const back = new URL(last.location!);
    expect(`${back.origin}${back.pathname}`).toBe(client.redirectUri);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe(authorization.state);
    expect(back.searchParams.get('code')).toBeNull();
  });

  describe('refuses a form whose CSRF token is not right, and changes nothing', () => {
    const cases: [string, (token: string) => string | undefined][] = [
      ['missing', () => undefined],
      ['wrong', () => 'not-the-token'],
      ['of the right length with other bytes', (t) => `${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`],
      ['of the right length with a non-ASCII character', (t) => `${t.slice(0, -1)}é`],
    ];
    it.each(cases)('token %s', async (_, forge) => {
      const { b, uid, csrf } = await atLogin();
      const before = acme.started.length;
      const token = forge(csrf);
      const res = await b.post(`/interaction/${uid}/login/acme`, token === undefined ? {} : { csrf: token });
      expect(res.status).toBe(403);
      expect(textOf(res)).toContain('This form has expired');
      expect(res.location).toBeNull();
      expect(acme.started).toHaveLength(before);
      expect(b.cookie('gatehouse.upstream')).toBeUndefined();
      const still = await b.get(`/interaction/${uid}`);
      expect(still.status).toBe(200);
      expect(providersOn(still.text)).toEqual(['Acme SSO', 'Globex ID']);
    });

    it('a token from another interaction', async () => {
      const one = await atLogin();
      const other = await authorize(one.b, client);
      const otherCsrf = csrfOf(await one.b.get(`/interaction/${other.uid}`));
      expect(otherCsrf).not.toBe(one.csrf);
      const res = await one.b.post(`/interaction/${other.uid}/abort`, { csrf: one.csrf });
      expect(res.status).toBe(403);
      expect(res.location).toBeNull();
      // the right token still works there: nothing was used up
      expect((await one.b.post(`/interaction/${other.uid}/abort`, { csrf: otherCsrf })).status).toBe(303);
    });

    it('a cookie and token carried over from another interaction (the CSRF token is bound to its interaction)', async () => {
      const one = await atLogin();
      const other = await authorize(one.b, client);
      await one.b.get(`/interaction/${other.uid}`);
      // an attacker puts interaction one's CSRF cookie (value and signature, both valid) on interaction two's path
      const oneCookies = one.b.snapshot().filter((c) => c.name.startsWith('gatehouse.csrf') && c.path === `/interaction/${one.uid}`);
      expect(oneCookies.map((c) => c.name).sort()).toEqual(['gatehouse.csrf', 'gatehouse.csrf.sig']);
      one.b.restore([
        ...one.b.snapshot().filter((c) => !(c.name.startsWith('gatehouse.csrf') && c.path === `/interaction/${other.uid}`)),
        ...oneCookies.map((c) => ({ ...c, path: `/interaction/${other.uid}` })),
      ]);
      expect(one.b.cookie('gatehouse.csrf', `/interaction/${other.uid}`)).toBe(`${one.uid}.${one.csrf}`);
      const res = await one.b.post(`/interaction/${other.uid}/abort`, { csrf: one.csrf });
      expect(res.status).toBe(403);
      expect(res.location).toBeNull();
    });
  });

  it('answers an unknown upstream with 404 and a way back', async () => {
    const { b, uid, csrf } = await atLogin();
    const res = await b.post(`/interaction/${uid}/login/nowhere`, { csrf });
    expect(res.status).toBe(404);
    expect(textOf(res)).toContain('Unknown sign-in method');
    expect(backLinkOf(res)).toBe(`/interaction/${uid}`);
    expect(b.cookie('gatehouse.upstream')).toBeUndefined();
  });

  it('refuses a step the interaction is not at', async () => {
    const { b, uid, csrf } = await atLogin();
    const res = await b.post(`/interaction/${uid}/confirm`, { csrf });
    expect(res.status).toBe(400);
    expect(textOf(res)).toContain('This step of signing in is already done.');
    expect(backLinkOf(res)).toBe(`/interaction/${uid}`);
    expect(res.location).toBeNull();
  });

  describe('shows "session has expired" (400, never 500)', () => {
    const expectExpired = (res: { status: number; text: string }) => {
      expect(res.status).toBe(400);
      expect(res.text).toContain('Your sign-in session has expired');
    };

    it('for an unknown interaction', async () => {
      expectExpired(await server.browser().get('/interaction/no-such-interaction'));
    });

    it('without the interaction cookie, for the page and for its forms', async () => {
      const { b, uid, csrf } = await atLogin();
      b.forget('_interaction');
      expectExpired(await b.get(`/interaction/${uid}`));
      const before = acme.started.length;
      expectExpired(await b.post(`/interaction/${uid}/login/acme`, { csrf }));
      expect(acme.started).toHaveLength(before);
    });

    it('once the interaction has outlived its hour', async () => {
      const { b, uid, csrf } = await atLogin();
      clock.advance(61 * 60 * 1000);
      try {
        expectExpired(await b.get(`/interaction/${uid}`));
        expectExpired(await b.post(`/interaction/${uid}/login/acme`, { csrf }));
      } finally {
        clock.advance(-61 * 60 * 1000);
      }
    });
  });

  describe('shows "sign-in link has expired" for a callback it cannot use', () => {
    const expectLinkExpired = (res: { status: number; text: string }) => {
      expect(res.status).toBe(400);
      expect(res.text).toContain('This sign-in link has expired');
    };

    it('when the same callback comes twice', async () => {
      const { b, uid } = await atLogin();
      await chooseUpstream(b, uid, 'acme');
      const back = acme.redirectBack();
      const kept = b.snapshot();
      const { last } = await b.follow(await b.get(back));
      expect(textOf(last)).toContain('Allow Sample App?');
      const finished = acme.finished.length;

      expectLinkExpired(await b.get(back));
      expectLinkExpired(await b.get(`/interaction/${uid}/callback/acme${back.search}`));
      // even with a copy of the cookies from before, the finished interaction is gone
      b.restore(kept);
      const { last: replayed } = await b.follow(await b.get(back));
      expect(replayed.status).toBe(400);
      expect(acme.finished).toHaveLength(finished);
    });

    it('when no sign-in is pending', async () => {
      const res = await server.browser().get('/oauth2/acme/callback?code=abc&state=xyz');
      expectLinkExpired(res);
      expect(res.location).toBeNull();
    });

    it('when the callback is for another upstream than the pending one', async () => {
      const { b, uid } = await atLogin();
      await chooseUpstream(b, uid, 'acme');
      const back = acme.redirectBack();
      const finished = [acme.finished.length, globex.finished.length];
      expectLinkExpired(await b.get(`/oauth2/globex/callback${back.search}`));
      expectLinkExpired(await b.get(`/interaction/${uid}/callback/globex${back.search}`));
      expect([acme.finished.length, globex.finished.length]).toEqual(finished);
    });
  });
});
