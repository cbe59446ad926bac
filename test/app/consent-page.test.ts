import {
  authorize, chooseUpstream, csrfOf, databaseKinds, exchangeCode, fakeUpstream, startInProcess, textOf,
  type Browser, type FakeUpstream, type InProcess, type Page, type TestClient,
} from '../support/in-process.js';

/**
 * The consent page lists everything the app receives from the request, and
 * marks what was not allowed before; allowing grants what the page lists.
 */

const THINGS = 'https://things.example.com';
const NEW = '<span class="new">new</span>';

/** Each innermost list item of the page's scope list, as text, with " [new]" when it carries the mark. */
function linesOf(page: Page): string[] {
  const list = /<ul class="scopes">([\s\S]*)<\/ul>/.exec(page.text)?.[1] ?? '';
  return [...list.matchAll(/<li>((?:(?!<li>|<\/li>|<ul>)[\s\S])*)<\/li>/g)].map((m) => {
    const text = m[1].replace(NEW, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    return m[1].includes(NEW) ? `${text} [new]` : text;
  });
}

const EVERYTHING = [
  'Know who you are (your account ID)',
  'See your email address',
  'See your name, username and picture',
  'Stay signed in to the app when you are away',
  'read:things',
];

describe.each(databaseKinds())('the consent page on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    await server.createApi(THINGS, 'Things API', ['read:things', 'write:things']);
  });
  afterAll(() => server?.close());

  /** Signs in at a fresh interaction and returns the consent page it lands on. */
  async function firstConsentPage(b: Browser, client: TestClient, extra: Record<string, string>) {
    const authorization = await authorize(b, client, extra);
    await chooseUpstream(b, authorization.uid, 'acme');
    const { last } = await b.follow(await b.get(acme.redirectBack()));
    // login and consent are two interactions: a new uid
    expect(new URL(last.url).pathname).toMatch(/^\/interaction\/[^/]+$/);
    return { authorization, page: last };
  }

  /** With the session already signed in: /auth goes straight to the consent page. */
  async function againConsentPage(b: Browser, client: TestClient, extra: Record<string, string>) {
    const authorization = await authorize(b, client, extra);
    const page = await b.get(`/interaction/${authorization.uid}`);
    return { authorization, page };
  }

  async function allow(b: Browser, page: Page): Promise<URL> {
    const done = await b.post(`${new URL(page.url).pathname}/confirm`, { csrf: csrfOf(page) });
    expect(done.status).toBe(303);
    const { last } = await b.follow(done);
    return new URL(last.location!);
  }

  it('lists everything on first consent (all new), again on prompt=consent (none new), and marks only the extra scope asked for later', async () => {
    acme.signInAs({ subject: 'acme-consent-1', email: 'c1@example.com', emailVerified: true, name: 'Cee One' });
    const client = await server.createClient({ name: 'Things App', resources: [THINGS] });
    const b = server.browser();
    // offline_access is kept only with prompt=consent (OpenID Connect Core §11)
    const ask = { scope: 'openid email profile offline_access read:things', resource: THINGS, prompt: 'consent' };

    // 1. first consent: everything, everything new
    const first = await firstConsentPage(b, client, ask);
    expect(first.page.status).toBe(200);
    expect(textOf(first.page)).toContain('Allow Things App?');
    expect(linesOf(first.page)).toEqual(EVERYTHING.map((l) => `${l} [new]`));
    expect(textOf(first.page)).toContain('Use Things API on your behalf: read:things new');
    expect(textOf(first.page)).toContain('new marks what you have not allowed Things App before.');
    expect(textOf(first.page)).not.toContain('write:things');
    // the marks are markup, not styles: nothing inline for the CSP to refuse
    expect(first.page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(first.page.text).not.toMatch(/<script|\sstyle=|<style/i);
    const firstCallback = await allow(b, first.page);
    const firstTokens = (await exchangeCode(server, first.authorization, firstCallback)).tokens;
    expect(firstTokens.scope?.split(' ').sort()).toEqual(['read:things']);
    expect(firstTokens.refresh_token).toEqual(expect.any(String));

    // 2. the same app again with prompt=consent: everything, nothing new
    const again = await againConsentPage(b, client, ask);
    expect(again.page.status).toBe(200);
    expect(linesOf(again.page)).toEqual(EVERYTHING);
    expect(again.page.text).not.toContain(NEW);
    expect(textOf(again.page)).toContain('You have allowed all of this before.');
    const againCallback = await allow(b, again.page);
    expect(againCallback.searchParams.get('code')).toEqual(expect.any(String));

    // 3. asking for one scope more: everything, only that one new
    const more = await againConsentPage(b, client, { ...ask, scope: `${ask.scope} write:things` });
    expect(more.page.status).toBe(200);
    expect(linesOf(more.page)).toEqual([...EVERYTHING, 'write:things [new]']);
    expect(more.page.text.split(NEW)).toHaveLength(3); // the one line and the legend
    const moreCallback = await allow(b, more.page);
    const moreTokens = (await exchangeCode(server, more.authorization, moreCallback)).tokens;
    expect(moreTokens.scope?.split(' ').sort()).toEqual(['read:things', 'write:things']);

    // what was granted: what the pages listed, no more
    const accountId = firstTokens.claims()!.sub;
    const consent = await server.database.prisma.consent.findUnique({ where: { accountId_clientId: { accountId, clientId: client.clientId } } });
    const grant = await server.app.provider.Grant.find(consent!.grantId);
    expect(grant!.getOIDCScope().split(' ').sort()).toEqual(['email', 'offline_access', 'openid', 'profile']);
    expect(grant!.getResourceScope(THINGS).split(' ').sort()).toEqual(['read:things', 'write:things']);
  });

  it('asking for more without prompt=consent lists what was allowed before with the new scope marked', async () => {
    acme.signInAs({ subject: 'acme-consent-2', email: 'c2@example.com', emailVerified: true });
    const client = await server.createClient({ name: 'Mail App' });
    const b = server.browser();

    const first = await firstConsentPage(b, client, { scope: 'openid email' });
    expect(linesOf(first.page)).toEqual(['Know who you are (your account ID) [new]', 'See your email address [new]']);
    await allow(b, first.page);

    const more = await againConsentPage(b, client, { scope: 'openid email profile' });
    expect(more.page.status).toBe(200);
    expect(linesOf(more.page)).toEqual(['Know who you are (your account ID)', 'See your email address', 'See your name, username and picture [new]']);
    const callback = await allow(b, more.page);
    const { tokens } = await exchangeCode(server, more.authorization, callback);
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
  });
});
