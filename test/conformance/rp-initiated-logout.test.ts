/**
 * oidcc-rp-initiated-logout-certification-test-plan (RP-Initiated Logout OP), module by
 * module as published in openid-certification/conformance-suite
 * (OIDCCRpInitiatedLogout*.java, AbstractOIDCCRpInitiatedLogout.java): variant
 * server_metadata=discovery, client_secret_basic, response_mode default, a static client
 * with `--post-logout-redirect-uri <redirect origin>/post_logout_redirect`.
 *
 * Runs against an https issuer (behind the harness's forwarding edge): the discovery
 * module wants every endpoint on https, and RP-Initiated Logout §2 requires POST at the
 * end_session_endpoint, which Gatehouse offers on https issuers (SameSite=None cookies);
 * oidcc-rp-initiated-logout runs with GET (as the suite redirects) and again with POST.
 *
 * "Must not redirect back and must either show an error screen or confirm with the user":
 * each such module asserts that nothing reaches the post_logout_redirect_uri and which of
 * the two Gatehouse shows.
 */
import { SignJWT } from 'jose';
import { browserAvailable } from '../support/browser.js';
import { PLANS } from './plans.js';
import {
  confirmLogout, endSession, endSessionState, expectLoggedOut, expectPostLogoutRedirect, signIn, POST_LOGOUT_REDIRECT_URI,
  type EndSessionOutcome, type LogoutContext,
} from './logout-support.js';
import {
  discovery, earlyClients, launchConformanceBrowser, startConformanceOp,
  type BrowserSession, type ConformanceBrowser,
} from './support/index.js';

const PLAN = 'oidcc-rp-initiated-logout-certification-test-plan';
const describeIf = browserAvailable() ? describe : describe.skip;

function expectNoRedirect(outcome: EndSessionOutcome, kind: 'error' | 'confirm' | 'signed-out') {
  if (outcome.kind === 'redirect') throw new Error(`the OP called the post_logout_redirect_uri: ${outcome.url.href}`);
  expect(outcome.kind).toBe(kind);
}

describeIf(PLAN, () => {
  const ctx = {} as LogoutContext;
  let browser: ConformanceBrowser;
  const sessions: BrowserSession[] = [];
  const session = async () => {
    const s = await browser.newSession();
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    ctx.op = await startConformanceOp({
      https: true,
      clients: [{ name: 'Logout RP', pkce: 'optional', extraArgs: ['--post-logout-redirect-uri', POST_LOGOUT_REDIRECT_URI] }],
    });
    [ctx.client] = earlyClients(ctx.op);
    browser = await launchConformanceBrowser(ctx.op);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await ctx.op?.stop();
  });

  const modules: Record<string, () => Promise<void>> = {
    async 'oidcc-rp-initiated-logout-discovery-endpoint-verification'() {
      const doc = await discovery(ctx.op);
      // CheckDiscEndpointAllEndpointsAreHttps
      for (const [key, value] of Object.entries(doc)) {
        if (key.endsWith('_endpoint')) expect(new URL(value as string).protocol).toBe('https:');
      }
      // CheckDiscEndSessionEndpoint: a valid https URL
      expect(typeof doc.end_session_endpoint).toBe('string');
      expect(new URL(doc.end_session_endpoint).protocol).toBe('https:');
      expect(doc.end_session_endpoint).toBe(`${ctx.op.issuer}/session/end`);
    },

    async 'oidcc-rp-initiated-logout'() {
      for (const method of ['GET', 'POST'] as const) {
        const s = await session();
        const login = await signIn(ctx, s);
        const state = endSessionState();
        const shown = await endSession(ctx, s, { id_token_hint: login.idToken, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state }, method);
        expectNoRedirect(shown, 'confirm');
        expectPostLogoutRedirect(await confirmLogout(ctx, s), state);
        await expectLoggedOut(ctx, s);
      }
    },

    async 'oidcc-rp-initiated-logout-bad-post-logout-redirect-uri'() {
      const s = await session();
      const login = await signIn(ctx, s);
      const shown = await endSession(ctx, s, { id_token_hint: login.idToken, post_logout_redirect_uri: `${new URL(POST_LOGOUT_REDIRECT_URI).origin}/bad_post_logout_redirect_uri`, state: endSessionState() });
      expectNoRedirect(shown, 'error');
      expect(shown.kind !== 'redirect' && shown.status).toBe(400);
      expect(shown.kind !== 'redirect' && shown.text).toMatch(/post_logout_redirect_uri/);
    },

    async 'oidcc-rp-initiated-logout-modified-id-token-hint'() {
      const s = await session();
      const login = await signIn(ctx, s);
      // ChangeIdTokenToAlgNone: the same claims, "signed" with alg none
      const [, payload] = login.idToken.split('.');
      const unsigned = `${Buffer.from('{"alg": "none"}').toString('base64url')}.${payload}.`;
      const shown = await endSession(ctx, s, { id_token_hint: unsigned, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: endSessionState() });
      expectNoRedirect(shown, 'error');
      expect(shown.kind !== 'redirect' && shown.status).toBe(400);
      expect(shown.kind !== 'redirect' && shown.text).toMatch(/id_token_hint/);
    },

    async 'oidcc-rp-initiated-logout-no-id-token-hint'() {
      const s = await session();
      await signIn(ctx, s);
      const shown = await endSession(ctx, s, { post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: endSessionState() });
      // Gatehouse confirms with the person; confirming still never reaches the post_logout_redirect_uri,
      // which without id_token_hint (or client_id) cannot be checked against a client
      expectNoRedirect(shown, 'confirm');
      expectNoRedirect(await confirmLogout(ctx, s), 'signed-out');
    },

    async 'oidcc-rp-initiated-logout-no-params'() {
      const s = await session();
      await signIn(ctx, s);
      const shown = await endSession(ctx, s, {});
      expectNoRedirect(shown, 'confirm');
      // ExpectSuccessfulLogoutPage: the "you are logged out" page, and the person is logged out
      expectNoRedirect(await confirmLogout(ctx, s), 'signed-out');
      await expectLoggedOut(ctx, s);
    },

    async 'oidcc-rp-initiated-logout-no-post-logout-redirect-uri'() {
      const s = await session();
      const login = await signIn(ctx, s);
      const shown = await endSession(ctx, s, { id_token_hint: login.idToken, state: endSessionState() });
      expectNoRedirect(shown, 'confirm');
      // the confirmation names the app the id_token_hint was issued to
      expect(shown.kind !== 'redirect' && shown.text).toContain('Logout RP');
      expectNoRedirect(await confirmLogout(ctx, s), 'signed-out');
      await expectLoggedOut(ctx, s);
    },

    async 'oidcc-rp-initiated-logout-no-state'() {
      const s = await session();
      const login = await signIn(ctx, s);
      const shown = await endSession(ctx, s, { id_token_hint: login.idToken, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
      expectNoRedirect(shown, 'confirm');
      // CheckNoPostLogoutState + no unexpected parameters
      expectPostLogoutRedirect(await confirmLogout(ctx, s), undefined);
      await expectLoggedOut(ctx, s);
    },

    async 'oidcc-rp-initiated-logout-only-state'() {
      const s = await session();
      await signIn(ctx, s);
      const shown = await endSession(ctx, s, { state: endSessionState() });
      expectNoRedirect(shown, 'confirm');
      expectNoRedirect(await confirmLogout(ctx, s), 'signed-out');
      await expectLoggedOut(ctx, s);
    },

    async 'oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri'() {
      const s = await session();
      const login = await signIn(ctx, s);
      const shown = await endSession(ctx, s, { id_token_hint: login.idToken, post_logout_redirect_uri: `${POST_LOGOUT_REDIRECT_URI}?foo=bar`, state: endSessionState() });
      expectNoRedirect(shown, 'error');
      expect(shown.kind !== 'redirect' && shown.status).toBe(400);
      expect(shown.kind !== 'redirect' && shown.text).toMatch(/post_logout_redirect_uri/);
    },

    async 'oidcc-rp-initiated-logout-bad-id-token-hint'() {
      const s = await session();
      await signIn(ctx, s);
      // GenerateFakeIdTokenClaims + SignFakeIdToken: "issued" by the client, signed with a key made from its secret
      const now = Math.floor(Date.now() / 1000);
      const fake = await new SignJWT({ iss: ctx.client.clientId, sub: 'SubjectID', aud: ctx.op.issuer, nonce: 'flibble', iat: now, exp: now + 300 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(ctx.client.clientSecret));
      const shown = await endSession(ctx, s, { id_token_hint: fake, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: endSessionState() });
      expectNoRedirect(shown, 'error');
      expect(shown.kind !== 'redirect' && shown.status).toBe(400);
    },
  };

  const plan = PLANS.find((p) => p.name === PLAN);
  if (!plan) throw new Error(`no plan ${PLAN} in plans.ts`);
  for (const module of plan.modules.filter((m) => m.status === 'run')) {
    const body = modules[module.name];
    if (!body) throw new Error(`${PLAN}: no test for module ${module.name}`);
    test(module.name, body, 60_000);
  }
});
