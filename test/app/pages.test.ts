import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createApp, type App } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { brandStylesheet, contrast } from '../../src/web/branding.js';
import { createClient } from '../../src/services/clients.js';
import { appInfo } from '../../src/interactions/app-info.js';
import { migratedDatabase } from '../support/databases.js';
import {
  authorize, Browser, chooseUpstream, csrfOf, exchangeCode, fakeUpstream, listen, startInProcess, textOf,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';

/**
 * Issue 18, pages a person understands: the landing page, request ids, error
 * pages that say what happened and what to do, branding, the app's logo and
 * links, and "Not you?" on the consent page.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STRICT = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/** Gatehouse in process with a logger whose lines the test reads. */
async function withLog(env: Record<string, string>, upstreams: FakeUpstream[] = []) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const http = await listen();
  const url = `http://localhost:${http.port}`;
  const db = await migratedDatabase('sqlite');
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', ...env, ISSUER: url, DATABASE_URL: db.testDb.url }, () => randomBytes(32).toString('base64url'));
  const app: App = await createApp({ config, database: db.database, logger: createLogger('info', stream), upstreams: new Map(upstreams.map((u) => [u.id, u])) });
  await app.start();
  http.server.on('request', app.callback());
  return {
    url, app, lines, db,
    browser: () => new Browser(url),
    async createClient(name = 'Sample App'): Promise<TestClient> {
      const clientId = `app-${randomBytes(6).toString('hex')}`;
      const redirectUri = 'https://app.example.com/cb';
      const { secret } = await createClient(db.database.prisma, {
        clientId, name, tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['authorization_code'], redirectUris: [redirectUri],
        resources: [], firstParty: false,
      });
      await app.cache.refresh();
      return { clientId, clientSecret: secret!, name, redirectUri };
    },
    async close() {
      await app.stop();
      await http.close();
      await db.close();
    },
  };
}

describe('the landing page, request ids and error pages', () => {
  let server: Awaited<ReturnType<typeof withLog>>;
  let client: TestClient;

  beforeAll(async () => {
    server = await withLog({});
    client = await server.createClient('Sample App');
  });
  afterAll(() => server?.close());

  it('/ is a small page: the product name, links to discovery, the JWKS and /account; strict CSP, no-store', async () => {
    const page = await server.browser().get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(STRICT);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.text).toContain('<title>Welcome · Gatehouse</title>');
    expect(page.text).toContain(`href="${server.url}/.well-known/openid-configuration"`);
    expect(page.text).toContain(`href="${server.url}/jwks"`);
    expect(page.text).toContain('href="/account"');
    expect(page.text).not.toMatch(/<script|\sstyle=|<style/i);
    // the links lead somewhere
    expect((await server.browser().get('/.well-known/openid-configuration')).status).toBe(200);
    expect((await server.browser().get('/jwks')).status).toBe(200);
  });

  it('gives every response an X-Request-Id that is in its log line, and ignores an incoming one without TRUST_PROXY', async () => {
    const res = await fetch(`${server.url}/jwks`, { headers: { 'x-request-id': 'proxy-given-id-123' } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(UUID);
    const line = server.lines.find((l) => l.msg === 'request' && l.requestId === id);
    expect(line).toMatchObject({ path: '/jwks', status: 200 });
  });

  it('an error page says what happened, what to do, and the request id of the log line', async () => {
    const page = await server.browser().get('/interaction/no-such-interaction');
    expect(page.status).toBe(400);
    const id = page.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    expect(textOf(page)).toContain('Your sign-in session has expired');
    expect(textOf(page)).toContain('Go back to the application and start signing in again.');
    expect(textOf(page)).toContain(`give this reference: ${id}`);
    expect(server.lines.find((l) => l.msg === 'request' && l.requestId === id)).toMatchObject({ status: 400 });
  });

  it('a page that does not exist is a page, with the id', async () => {
    const page = await server.browser().get('/account/nothing-here');
    expect(page.status).toBe(404);
    expect(textOf(page)).toContain('There is no page at this address.');
    expect(textOf(page)).toContain(page.headers.get('x-request-id')!);
  });

  it('oidc-provider\'s "client is invalid" says the app is not registered and to tell its owner, with the id', async () => {
    const page = await server.browser().get('/auth?client_id=nope&response_type=code&scope=openid&redirect_uri=https://evil.example/cb');
    expect(page.status).toBe(400);
    const text = textOf(page);
    expect(text).toContain('Unknown application');
    expect(text).toContain('The app that sent you here is not registered');
    expect(text).toContain('tell its owner');
    expect(text).not.toContain('client is invalid');
    expect(text).toContain(page.headers.get('x-request-id')!);
    expect(page.headers.get('content-security-policy')).toBe(STRICT);
  });

  it('an unregistered return address says so in words', async () => {
    const page = await server.browser().get(`/auth?client_id=${client.clientId}&response_type=code&scope=openid&redirect_uri=https://evil.example/cb`);
    expect(page.status).toBe(400);
    expect(textOf(page)).toContain('Unknown return address');
    expect(textOf(page)).toContain('an address that is not registered for it');
    expect(textOf(page)).toContain('tell its owner');
    expect(textOf(page)).toContain(page.headers.get('x-request-id')!);
  });

  it('with no upstream, the login page shows no variable names, and the operator hint is logged once, at warn', async () => {
    const b = server.browser();
    const { uid } = await authorize(b, client);
    const first = await b.get(`/interaction/${uid}`);
    await b.get(`/interaction/${uid}`);
    expect(first.status).toBe(200);
    expect(textOf(first)).toContain('No way to sign in is set up yet. If you run this server, see its README.');
    expect(first.text).not.toMatch(/GITHUB_|GOOGLE_|OIDC_PROVIDERS/);
    const hints = server.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('GITHUB_CLIENT_ID'));
    expect(hints).toHaveLength(1);
    expect(hints[0].level).toBe(40);
  });
});

describe('request ids behind a trusted proxy', () => {
  let server: Awaited<ReturnType<typeof withLog>>;
  beforeAll(async () => {
    server = await withLog({ TRUST_PROXY: 'true' });
  });
  afterAll(() => server?.close());

  it('keeps a well-formed incoming id and replaces a malformed one', async () => {
    const kept = await fetch(`${server.url}/`, { headers: { 'x-request-id': 'edge-4f2a9c71' } });
    expect(kept.headers.get('x-request-id')).toBe('edge-4f2a9c71');
    expect(server.lines.some((l) => l.msg === 'request' && l.requestId === 'edge-4f2a9c71')).toBe(true);
    for (const bad of ['short', 'has space in it', `${'x'.repeat(200)}`, 'quote"inside-it']) {
      const res = await fetch(`${server.url}/`, { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(UUID);
    }
  });
});

describe('branding', () => {
  let server: InProcess;
  beforeAll(async () => {
    server = await startInProcess({ env: { BRAND_NAME: 'Acme Identity', BRAND_LOGO_URL: 'https://cdn.acme.example/logo.svg', BRAND_ACCENT_COLOR: '#AA0000' } });
  });
  afterAll(() => server?.close());

  it('names the product in the title and header, shows the logo, and colours buttons and links through a generated stylesheet', async () => {
    const page = await server.browser().get('/');
    expect(page.text).toContain('<title>Welcome · Acme Identity</title>');
    expect(page.text).toMatch(/<header class="brand">\s*<img class="brand-logo" src="https:\/\/cdn.acme.example\/logo.svg" alt="" width="32" height="32">\s*<span class="brand-name">Acme Identity<\/span>/);
    // the CSP stays strict: only the logo's origin is added to img-src; nothing inline
    expect(page.headers.get('content-security-policy')).toBe(STRICT.replace("img-src 'self' data:", "img-src 'self' data: https://cdn.acme.example"));
    expect(page.text).not.toMatch(/<script|\sstyle=|<style/i);
    const href = /<link rel="stylesheet" href="(\/assets\/brand\.css\?v=[\w-]+)">/.exec(page.text)?.[1];
    expect(href).toBeDefined();
    const css = await server.browser().get(href!);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.text).toContain('--brand: #aa0000;');
    expect(css.text).toContain('--on-brand: #ffffff;');
    // error pages carry the brand too
    const error = await server.browser().get('/interaction/nope');
    expect(error.text).toContain('· Acme Identity</title>');
  });

  it('keeps links readable: a pale brand colour is darkened for links on white, and a button gets dark text', () => {
    const css = brandStylesheet('#ffee00');
    expect(css).toContain('--on-brand: #000000');
    const light = /--accent: (#[0-9a-f]{6})/.exec(css)![1];
    expect(contrast(light, '#ffffff')).toBeGreaterThanOrEqual(4.5);
    const dark = /prefers-color-scheme: dark\) \{ :root \{ --accent: (#[0-9a-f]{6})/.exec(brandStylesheet('#1a237e'))![1];
    expect(contrast(dark, '#161b22')).toBeGreaterThanOrEqual(4.5);
  });
});

describe('the app on login and consent, and "Not you?"', () => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ upstreams: [acme] });
    client = await server.createClient({ name: 'Photo App' });
    await server.database.prisma.client.update({
      where: { clientId: client.clientId },
      data: { metadata: { logo_uri: 'https://photos.example/logo.png', policy_uri: 'https://photos.example/privacy', tos_uri: 'https://photos.example/terms' } },
    });
    await server.app.cache.refresh();
  });
  afterAll(() => server?.close());

  it('shows the registered logo and privacy policy (http(s) only, noopener noreferrer), with the logo origin in img-src', async () => {
    const b = server.browser();
    const { uid } = await authorize(b, client);
    const login = await b.get(`/interaction/${uid}`);
    expect(login.text).toContain('<img class="app-logo" src="https://photos.example/logo.png" alt="Logo of Photo App" width="48" height="48">');
    expect(login.text).toContain('<a href="https://photos.example/privacy" rel="noopener noreferrer" target="_blank">Privacy policy of Photo App</a>');
    expect(login.text).toContain('<a href="https://photos.example/terms" rel="noopener noreferrer" target="_blank">Terms of Photo App</a>');
    expect(login.headers.get('content-security-policy')).toContain("img-src 'self' data: https://photos.example;");
  });

  it('leaves out a logo that is not https and links that are not http(s)', () => {
    const info = appInfo({
      clientId: 'x', clientName: 'X',
      metadata: () => ({ logo_uri: 'http://x.example/logo.png', policy_uri: 'javascript:alert(1)', tos_uri: 'http://x.example/terms' }),
    });
    expect(info).toEqual({ name: 'X', logo: undefined, policy: undefined, tos: 'http://x.example/terms' });
  });

  it('the consent page says who is signed in; "Not you?" signs this browser out and asks for a login in the same request', async () => {
    acme.signInAs({ subject: 'acme-ada', email: 'ada@example.com', emailVerified: true, name: 'Ada Lovelace' });
    const b = server.browser();
    const authorization = await authorize(b, client);
    await chooseUpstream(b, authorization.uid, 'acme');
    const { last: consent } = await b.follow(await b.get(acme.redirectBack()));
    expect(textOf(consent)).toContain('Allow Photo App?');
    expect(textOf(consent)).toContain('Signed in as Ada Lovelace (ada@example.com)');
    expect(consent.text).toContain('<img class="app-logo" src="https://photos.example/logo.png"');
    const consentPath = new URL(consent.url).pathname;
    const sessionsBefore = await server.database.prisma.oidcPayload.count({ where: { type: 'Session' } });

    // without the CSRF token: refused, nothing happens
    expect((await b.post(`${consentPath}/not-you`, {})).status).toBe(403);

    const notYou = await b.post(`${consentPath}/not-you`, { csrf: csrfOf(consent) });
    expect(notYou.status).toBe(303);
    expect(await server.database.prisma.oidcPayload.count({ where: { type: 'Session' } })).toBe(sessionsBefore - 1);
    const { last: login } = await b.follow(notYou);
    expect(login.status).toBe(200);
    expect(new URL(login.url).pathname).not.toBe(consentPath);
    expect(textOf(login)).toContain('Photo App wants you to sign in.');

    // someone else signs in, consents, and the app gets their code for its original request
    acme.signInAs({ subject: 'acme-grace', email: 'grace@example.com', emailVerified: true, name: 'Grace Hopper' });
    await b.post(`${new URL(login.url).pathname}/login/acme`, { csrf: csrfOf(login) });
    const { last: consent2 } = await b.follow(await b.get(acme.redirectBack()));
    expect(textOf(consent2)).toContain('Signed in as Grace Hopper (grace@example.com)');
    const done = await b.post(`${new URL(consent2.url).pathname}/confirm`, { csrf: csrfOf(consent2) });
    const { last } = await b.follow(done);
    const callback = new URL(last.location!);
    expect(callback.searchParams.get('state')).toBe(authorization.state);
    const { tokens } = await exchangeCode(server, authorization, callback);
    const grace = await server.database.prisma.federatedIdentity.findUnique({ where: { provider_subject: { provider: 'acme', subject: 'acme-grace' } } });
    expect(tokens.claims()!.sub).toBe(grace!.accountId);
  });
});
