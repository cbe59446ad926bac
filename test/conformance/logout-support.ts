/**
 * Steps shared by the logout plans (rp-initiated-logout.test.ts, backchannel-logout.test.ts):
 * AbstractOIDCCRpInitiatedLogout of the published suite (net.openid.conformance.openid).
 *
 * - `signIn(ctx, session)`: the first authorization (state of 128 characters, "to check the
 *   OP doesn't corrupt it"), code redeemed with client_secret_basic, ID token validated.
 * - `endSession(ctx, session, params, method)`: sends the browser to end_session_endpoint
 *   (GET, or POST as an auto-submitted form from the client's origin) and reports where it
 *   stopped: the confirmation page, the signed-out page, an error page, or the
 *   post_logout_redirect_uri (captured, never served by a real client).
 * - `confirmLogout(ctx, session)`: answers "Yes, sign me out" on the confirmation page.
 * - `expectLoggedOut(ctx, session)`: the suite's second authorization with prompt=none,
 *   which must come back with an error that needs a user interface.
 * - `endSessionState()`: the suite's CreateRandomEndSessionState (VSCHAR, no '+', ' ', ';').
 */
import { expect } from '@jest/globals';
import { randomInt } from 'node:crypto';
import type { Page } from 'playwright-core';
import {
  authorizationParams, discovery, expectCode, expectError, expectRedirect, redeemCode, validateIdToken, RP_ORIGIN,
  type BrowserSession, type ConformanceClient, type ConformanceOp, type PreparedRequest,
} from './support/index.js';

export const POST_LOGOUT_REDIRECT_URI = `${RP_ORIGIN}/post_logout_redirect`;

export interface LogoutContext {
  op: ConformanceOp;
  client: ConformanceClient;
}

export interface LoggedIn {
  request: PreparedRequest;
  idToken: string;
  accessToken: string;
  claims: Record<string, any>;
}

export type EndSessionOutcome =
  | { kind: 'redirect'; url: URL }
  | { kind: 'confirm' | 'signed-out' | 'error'; status: number; heading: string; text: string };

/** RFC 6749 Appendix A VSCHAR, as the suite generates it (10 to 30 characters). */
export function endSessionState(length = 10 + randomInt(21)): string {
  let s = '';
  while (s.length < length) {
    const c = String.fromCharCode(0x20 + randomInt(0x7f - 0x20));
    if (c !== '+' && c !== ' ' && c !== ';') s += c;
  }
  return s;
}

const longState = () => endSessionState(128);

export async function signIn(ctx: LogoutContext, session: BrowserSession): Promise<LoggedIn> {
  const request = await authorizationParams(ctx.client);
  request.state = longState();
  request.params.state = request.state;
  const outcome = await session.authorize({ params: request.params });
  const code = expectCode(outcome, request, ctx.op);
  expect(outcome.kind === 'redirect' && outcome.params.get('state')).toBe(request.state);
  const token = await redeemCode(ctx.op, ctx.client, code);
  if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}: ${JSON.stringify(token.body)}`);
  const { claims } = await validateIdToken(ctx.op, token.body.id_token, { clientId: ctx.client.clientId, nonce: request.nonce, accessToken: token.body.access_token, code });
  return { request, idToken: token.body.id_token, accessToken: token.body.access_token, claims };
}

interface Watch {
  redirects: URL[];
}
const watches = new WeakMap<BrowserSession, Watch>();

/** Captures what reaches the post_logout_redirect_uri (any query), ahead of the harness's own RP route. */
async function watch(session: BrowserSession): Promise<Watch> {
  let w = watches.get(session);
  if (w) return w;
  const created: Watch = { redirects: [] };
  w = created;
  watches.set(session, created);
  await session.context.route((url) => url.origin === RP_ORIGIN && (url.pathname === '/post_logout_redirect' || url.pathname.startsWith('/__logout-start')), async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname.startsWith('/__logout-start')) {
      const params = JSON.parse(decodeURIComponent(url.searchParams.get('p') ?? '{}')) as Record<string, string>;
      const action = url.searchParams.get('action')!;
      const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      const inputs = Object.entries(params).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
      return route.fulfill({ status: 200, contentType: 'text/html', body: `<!doctype html><body><form method="post" action="${esc(action)}">${inputs}</form><script>document.forms[0].submit()</script></body>` });
    }
    created.redirects.push(url);
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>client</title><p>post logout</p>' });
  });
  return created;
}

async function pageText(page: Page) {
  const got = await page.evaluate(() => ({
    heading: document.querySelector('h1')?.textContent ?? '',
    text: document.body?.textContent ?? '',
    requestId: document.querySelector('.request-id') !== null,
  })).catch(() => ({ heading: '', text: '', requestId: false }));
  return { heading: got.heading.trim(), text: got.text.replace(/\s+/g, ' ').trim(), requestId: got.requestId };
}

/** Waits until the browser settles on the client (post_logout_redirect_uri) or on one of Gatehouse's pages. */
async function settle(ctx: LogoutContext, session: BrowserSession, w: Watch, before: number, status: () => number): Promise<EndSessionOutcome> {
  const page = session.page;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (w.redirects.length > before) return { kind: 'redirect', url: w.redirects[before] };
    await page.waitForLoadState('domcontentloaded').catch(() => undefined);
    const here = page.url();
    if (here.startsWith(ctx.op.issuer)) {
      const { heading, text, requestId } = await pageText(page);
      if (heading === 'Sign out?') return { kind: 'confirm', status: status(), heading, text };
      if (heading === 'You are signed out') return { kind: 'signed-out', status: status(), heading, text };
      if (requestId) return { kind: 'error', status: status(), heading, text };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (w.redirects.length > before) return { kind: 'redirect', url: w.redirects[before] };
  throw new Error(`the browser stopped at ${page.url()}: ${(await pageText(page)).text.slice(0, 300)}`);
}

function statusTracker(page: Page): () => number {
  let last = 0;
  page.on('response', (res) => {
    if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) last = res.status();
  });
  return () => last;
}

const trackers = new WeakMap<BrowserSession, () => number>();
function tracker(session: BrowserSession) {
  let t = trackers.get(session);
  if (!t) {
    t = statusTracker(session.page);
    trackers.set(session, t);
  }
  return t;
}

export async function endSession(ctx: LogoutContext, session: BrowserSession, params: Record<string, string>, method: 'GET' | 'POST' = 'GET'): Promise<EndSessionOutcome> {
  const w = await watch(session);
  const status = tracker(session);
  const endpoint = (await discovery(ctx.op)).end_session_endpoint as string;
  const before = w.redirects.length;
  if (method === 'POST') {
    const start = new URL(`${RP_ORIGIN}/__logout-start-${Date.now()}`);
    start.searchParams.set('action', endpoint);
    start.searchParams.set('p', encodeURIComponent(JSON.stringify(params)));
    await session.page.goto(start.href).catch(() => undefined);
  } else {
    const url = new URL(endpoint);
    url.search = new URLSearchParams(params).toString();
    await session.page.goto(url.href).catch(() => undefined);
  }
  return settle(ctx, session, w, before, status);
}

export async function confirmLogout(ctx: LogoutContext, session: BrowserSession): Promise<EndSessionOutcome> {
  const w = await watch(session);
  const status = tracker(session);
  const before = w.redirects.length;
  const here = session.page.url();
  await session.page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await session.page.waitForURL((u) => u.href !== here, { timeout: 10_000 }).catch(() => undefined);
  return settle(ctx, session, w, before, status);
}

/** The second authorization, prompt=none: the person is logged out, so an error that needs a UI comes back. */
export async function expectLoggedOut(ctx: LogoutContext, session: BrowserSession): Promise<void> {
  const request = await authorizationParams(ctx.client, { extra: { prompt: 'none' } });
  request.state = longState();
  request.params.state = request.state;
  const outcome = await session.authorize({ params: request.params });
  expectRedirect(outcome);
  expect(outcome.seen).toEqual([]);
  expectError(outcome, request, /^(interaction_required|login_required|account_selection_required|consent_required)$/);
}

/** The suite's CheckPostLogoutState + CheckForUnexpectedParametersInPostLogoutRedirect. */
export function expectPostLogoutRedirect(outcome: EndSessionOutcome, state: string | undefined): URL {
  if (outcome.kind !== 'redirect') throw new Error(`expected a redirect to the post_logout_redirect_uri, got the ${outcome.kind} page (${outcome.status}) "${outcome.heading}": ${outcome.text.slice(0, 300)}`);
  expect(`${outcome.url.origin}${outcome.url.pathname}`).toBe(POST_LOGOUT_REDIRECT_URI);
  if (state === undefined) expect(outcome.url.searchParams.has('state')).toBe(false);
  else expect(outcome.url.searchParams.get('state')).toBe(state);
  expect([...outcome.url.searchParams.keys()].filter((k) => k !== 'state')).toEqual([]);
  return outcome.url;
}
