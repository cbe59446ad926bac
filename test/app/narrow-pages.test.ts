import type { Browser as Chromium, Page } from 'playwright-core';
import { browserAvailable, launchBrowser } from '../support/browser.js';
import { fakeUpstream, startInProcess, type FakeUpstream, type InProcess, type TestClient } from '../support/in-process.js';

/**
 * Every page stays readable on a 375 px phone: nothing is wider than the
 * viewport (no horizontal scrolling), with long names, emails and addresses.
 */

const describeIf = browserAvailable() ? describe : describe.skip;
const WIDTH = 375;

describeIf('pages at 375 px wide', () => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;
  let chromium: Chromium;
  let closeChromium: () => Promise<void>;
  let page: Page;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme Single Sign-On for Very Long Organisation Names');
    server = await startInProcess({ upstreams: [acme], env: { BRAND_NAME: 'IdentityServiceOfTheExampleOrganisationWorldwide' } });
    client = await server.createClient({ name: 'AnApplicationWithAnUnreasonablyLongNameThatNeverBreaks' });
    await server.database.prisma.client.update({
      where: { clientId: client.clientId },
      data: { metadata: { policy_uri: `https://example.com/${'privacy-policy-'.repeat(8)}`, tos_uri: 'https://example.com/terms' } },
    });
    await server.app.cache.refresh();
    acme.signInAs({ subject: 'acme-narrow', email: `someone.with.a.very.long.address.${'x'.repeat(40)}@example.com`, emailVerified: true, name: 'Ada' });
    ({ browser: chromium, close: closeChromium } = await launchBrowser());
    page = await chromium.newPage();
    await page.setViewportSize({ width: WIDTH, height: 740 });
    // the fake upstream's host is never reached: it sends the browser straight back, signed in
    await page.route('https://acme.upstream.test/**', (route) => route.fulfill({ status: 302, headers: { location: acme.redirectBack().href } }));
  });
  afterAll(async () => {
    await closeChromium?.();
    await server?.close();
  });

  async function fitsNarrowScreen(what: string) {
    const { scrollWidth, heading } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      heading: document.querySelector('h1')?.textContent ?? '',
    }));
    expect({ what, heading, scrollWidth }).toEqual({ what, heading, scrollWidth: expect.any(Number) });
    expect(`${what}: ${scrollWidth}`).toBe(`${what}: ${Math.min(scrollWidth, WIDTH)}`);
    // the stylesheets loaded (a page without them would fit trivially)
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('main')!).borderRadius)).toBe('12px');
  }

  it('the landing page, an error page, the login page and the consent page fit', async () => {
    await page.goto(`${server.url}/`);
    await fitsNarrowScreen('landing');

    await page.goto(`${server.url}/auth?client_id=nope&response_type=code&scope=openid`);
    expect(await page.textContent('h1')).toBe('Unknown application');
    await fitsNarrowScreen('error');

    const auth = new URL('/auth', server.url);
    auth.search = new URLSearchParams({
      client_id: client.clientId, response_type: 'code', redirect_uri: client.redirectUri, scope: 'openid email profile',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    }).toString();
    await page.goto(auth.href);
    expect(await page.textContent('h1')).toBe('Sign in');
    await fitsNarrowScreen('login');

    const loginUrl = page.url();
    await page.click('button.provider-acme');
    await page.waitForURL((url) => url.href !== loginUrl && /\/interaction\/[^/]+$/.test(url.pathname));
    expect(await page.textContent('h1')).toContain('Allow');
    expect(await page.textContent('main')).toContain('Not you?');
    await fitsNarrowScreen('consent');
  });
});
