/**
 * A person in headless Chromium, for the conformance modules that need one.
 *
 * API:
 * - `launchConformanceBrowser(op)` → `ConformanceBrowser`: one Chromium per test file.
 *   `newSession()` opens a fresh browser context (no cookies: "please remove any
 *   cookies"), `close()` closes Chromium.
 * - `session.authorize(request)`: sends the authorization request (GET to
 *   `authorization_endpoint` with exactly `request.params`, or `method: 'POST'` as an
 *   auto-submitted form from the client's origin), signs in when Gatehouse's login page
 *   shows (clicks "Continue with Google"; the stand-in signs in `op.google`'s user),
 *   answers the consent page (`consent: 'allow'` by default, or 'deny'), and returns
 *   what arrived at the client's redirect URI — query, fragment or form_post body —
 *   without any client behind it: requests to RP_ORIGIN (support/server.ts) are
 *   intercepted and answered with a blank page. If the browser stops on any other page
 *   (an error page), it returns that page: `{ kind: 'page', status, heading, text }`.
 *   `onPage(which, page)` runs on each login/consent page before it is answered (to
 *   assert its DOM); `login: false` stops at the login page instead of signing in.
 * - `session.page`, `session.context`, `session.close()`.
 *
 * With an https op (startConformanceOp({ https: true })), every request to the issuer
 * is forwarded to the plain-http server with X-Forwarded-Proto: https, the way a
 * TLS-ending proxy would; the browser sees https (Secure, SameSite=None cookies work).
 */
import type { Browser, BrowserContext, Page, Route } from 'playwright-core';
import { launchBrowser } from '../../support/browser.js';
import { discovery } from './protocol.js';
import { RP_ORIGIN, type ConformanceOp } from './server.js';

export interface AuthorizationRequest {
  /** sent exactly as given: nothing is added */
  params: Record<string, string>;
  method?: 'GET' | 'POST';
  consent?: 'allow' | 'deny';
  /** false: return the login page instead of signing in */
  login?: boolean;
  onPage?: (which: 'login' | 'consent', page: Page) => Promise<void>;
  /** default 20 s */
  timeoutMs?: number;
}

export interface RedirectOutcome {
  kind: 'redirect';
  /** where the browser was sent, without the response parameters' origin */
  url: URL;
  /** the response: query, fragment or form_post body */
  params: URLSearchParams;
  via: 'query' | 'fragment' | 'form_post';
  /** the interaction pages the person saw, in order */
  seen: ('login' | 'consent')[];
}

export interface PageOutcome {
  kind: 'page';
  status: number;
  url: string;
  heading: string;
  text: string;
  seen: ('login' | 'consent')[];
  /** 'login' when stopped at the login page (login: false) */
  at?: 'login' | 'error';
}

export type AuthorizationOutcome = RedirectOutcome | PageOutcome;

interface Capture {
  url: URL;
  method: string;
  postData: string | null;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  authorize(request: AuthorizationRequest): Promise<AuthorizationOutcome>;
  close(): Promise<void>;
}

export interface ConformanceBrowser {
  browser: Browser;
  newSession(): Promise<BrowserSession>;
  close(): Promise<void>;
}

const BLANK = '<!doctype html><title>client</title><p>received</p>';

/**
 * The https edge: the browser talks https to the issuer, the server gets http +
 * X-Forwarded-Proto. Requests to the upstream stand-in pass through the same way
 * (unchanged), because Chromium does not intercept where a real redirect leads.
 */
async function forward(route: Route, target: string, extraHeaders: Record<string, string>): Promise<void> {
  const request = route.request();
  const url = new URL(request.url());
  const headers = { ...(await request.allHeaders()), ...extraHeaders };
  for (const h of Object.keys(headers)) if (h.startsWith(':')) delete headers[h];
  const res = await fetch(`${target}${url.pathname}${url.search}`, {
    method: request.method(), headers, body: request.postDataBuffer() ? new Uint8Array(request.postDataBuffer()!) : undefined, redirect: 'manual',
  });
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => { if (k !== 'set-cookie') out[k] = v; });
  const cookies = res.headers.getSetCookie();
  if (cookies.length) out['set-cookie'] = cookies.join('\n');
  const location = res.headers.get('location');
  if (res.status >= 300 && res.status < 400 && location) {
    // Chromium does not intercept the request a fulfilled redirect leads to, so the
    // browser is sent on by a page instead (cookies set as the redirect would).
    const target = escapeHtml(new URL(location, url).href);
    const page = `<!doctype html><meta http-equiv="refresh" content="0;url=${target}"><title>redirect</title>`;
    await route.fulfill({ status: 200, headers: { 'content-type': 'text/html', ...(cookies.length ? { 'set-cookie': out['set-cookie'] } : {}) }, body: page });
    return;
  }
  await route.fulfill({ status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) });
}

async function setUpContext(browser: Browser, op: ConformanceOp, captures: Capture[], pending: Map<string, string>) {
  const context = await browser.newContext();
  await context.route((url) => url.origin === RP_ORIGIN, async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const staged = pending.get(url.pathname);
    if (staged !== undefined) {
      pending.delete(url.pathname);
      return route.fulfill({ status: 200, contentType: 'text/html', body: staged });
    }
    captures.push({ url, method: request.method(), postData: request.postData() });
    return route.fulfill({ status: 200, contentType: 'text/html', body: BLANK });
  });
  if (op.https) {
    await context.route((url) => url.origin === op.issuer, (route) => forward(route, op.internalUrl, { 'x-forwarded-proto': 'https' }));
    await context.route((url) => url.origin === op.google.issuer, (route) => forward(route, op.google.issuer, {}));
  }
  return context;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** A page on the client's origin that POSTs the request to the authorization endpoint. */
function postForm(action: string, params: Record<string, string>): string {
  const inputs = Object.entries(params).map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('');
  return `<!doctype html><body><form method="post" action="${escapeHtml(action)}">${inputs}</form><script>document.forms[0].submit()</script></body>`;
}

export async function launchConformanceBrowser(op: ConformanceOp): Promise<ConformanceBrowser> {
  const { browser, close } = await launchBrowser();
  return {
    browser,
    close,
    async newSession() {
      const captures: Capture[] = [];
      const pending = new Map<string, string>();
      const context = await setUpContext(browser, op, captures, pending);
      const page = await context.newPage();
      let lastStatus = 0;
      page.on('response', (res) => {
        if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) lastStatus = res.status();
      });
      return {
        context,
        page,
        close: () => context.close(),
        async authorize(request) {
          const endpoint = (await discovery(op)).authorization_endpoint as string;
          const before = captures.length;
          if (request.method === 'POST') {
            const path = `/__start-${captures.length}-${Date.now()}`;
            pending.set(path, postForm(endpoint, request.params));
            await page.goto(`${RP_ORIGIN}${path}`);
          } else {
            const url = new URL(endpoint);
            url.search = new URLSearchParams(request.params).toString();
            await page.goto(url.href).catch(() => undefined);
          }
          return drive(page, op, request, () => captures.slice(before)[0], () => lastStatus);
        },
      };
    },
  };
}

async function pageOutcome(page: Page, status: number, seen: PageOutcome['seen'], at?: PageOutcome['at']): Promise<PageOutcome> {
  const heading = ((await page.locator('h1').first().textContent({ timeout: 2000 }).catch(() => '')) ?? '').trim();
  const text = ((await page.locator('body').textContent({ timeout: 2000 }).catch(() => '')) ?? '').replace(/\s+/g, ' ').trim();
  return { kind: 'page', status, url: page.url(), heading, text, seen, at };
}

function redirectOutcome(page: Page, capture: Capture, seen: RedirectOutcome['seen']): RedirectOutcome {
  if (capture.method === 'POST') return { kind: 'redirect', url: capture.url, params: new URLSearchParams(capture.postData ?? ''), via: 'form_post', seen };
  const shown = new URL(page.url());
  const fragment = shown.origin === RP_ORIGIN && shown.hash.length > 1 ? shown.hash.slice(1) : '';
  if (fragment) return { kind: 'redirect', url: capture.url, params: new URLSearchParams(fragment), via: 'fragment', seen };
  return { kind: 'redirect', url: capture.url, params: capture.url.searchParams, via: 'query', seen };
}

/** Walks the browser through login and consent until the client's redirect URI is reached or a page stops it. */
async function drive(page: Page, op: ConformanceOp, request: AuthorizationRequest, captured: () => Capture | undefined, status: () => number): Promise<AuthorizationOutcome> {
  const seen: ('login' | 'consent')[] = [];
  const deadline = Date.now() + (request.timeoutMs ?? 20_000);
  const google = page.getByRole('button', { name: 'Continue with Google' });
  const allow = page.getByRole('button', { name: request.consent === 'deny' ? 'Deny' : 'Allow', exact: true });
  for (let step = 0; Date.now() < deadline; step += 1) {
    const capture = captured();
    if (capture) {
      await page.waitForURL((u) => u.origin === RP_ORIGIN && !u.pathname.startsWith('/__start-'), { timeout: 5000 }).catch(() => undefined);
      return redirectOutcome(page, capture, seen);
    }
    await page.waitForLoadState('domcontentloaded').catch(() => undefined);
    const here = page.url();
    const onIssuer = here.startsWith(op.issuer);
    if (onIssuer && here.includes('/interaction/') && (await google.isVisible().catch(() => false))) {
      seen.push('login');
      await request.onPage?.('login', page);
      if (request.login === false) return pageOutcome(page, status(), seen, 'login');
      await google.click();
      await page.waitForURL((u) => u.href !== here, { timeout: 10_000 }).catch(() => undefined);
      continue;
    }
    if (onIssuer && here.includes('/interaction/') && (await allow.isVisible().catch(() => false))) {
      seen.push('consent');
      await request.onPage?.('consent', page);
      await allow.click();
      await page.waitForURL((u) => u.href !== here, { timeout: 10_000 }).catch(() => undefined);
      continue;
    }
    if (onIssuer && (await page.locator('.request-id').count().catch(() => 0)) > 0) {
      return pageOutcome(page, status(), seen, 'error');
    }
    await new Promise((r) => setTimeout(r, step < 20 ? 25 : 100));
  }
  const capture = captured();
  if (capture) return redirectOutcome(page, capture, seen);
  return pageOutcome(page, status(), seen);
}
