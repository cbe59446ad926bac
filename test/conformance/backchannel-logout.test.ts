/**
 * oidcc-backchannel-rp-initiated-logout-certification-test-plan (Back-Channel Logout OP),
 * as published in openid-certification/conformance-suite
 * (OIDCCBackchannelLogoutDiscoveryEndpointVerification.java, OIDCCBackChannelRpInitiatedLogout.java):
 * variant server_metadata=discovery, client_secret_basic, response_mode default, a static
 * client with a post_logout_redirect_uri and a backchannel_logout_uri.
 *
 * The back-channel logout receiver is a small HTTP server of this test's on 127.0.0.1
 * (answering 200 with Cache-Control: no-store, as the suite does). Gatehouse runs with
 * ALLOW_PRIVATE_NETWORK_REQUESTS=true, which lets it post to that loopback URI because an
 * admin registered it (the CLI). The issuer is https (the discovery module wants every
 * endpoint on https).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { browserAvailable } from '../support/browser.js';
import { PLANS } from './plans.js';
import {
  confirmLogout, endSession, endSessionState, expectLoggedOut, expectPostLogoutRedirect, signIn, POST_LOGOUT_REDIRECT_URI,
  type LogoutContext,
} from './logout-support.js';
import { discovery, earlyClients, jwks, launchConformanceBrowser, startConformanceOp, type BrowserSession, type ConformanceBrowser } from './support/index.js';

const PLAN = 'oidcc-backchannel-rp-initiated-logout-certification-test-plan';
const describeIf = browserAvailable() ? describe : describe.skip;

interface Received {
  method: string;
  contentType: string;
  body: string;
}

/** The RP's backchannel_logout endpoint. */
async function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/backchannel_logout') received.push({ method: req.method ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(req.url === '/backchannel_logout' ? 200 : 404, { 'cache-control': 'no-store' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/backchannel_logout`, received };
}

async function waitFor<T>(what: string, get: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeIf(PLAN, () => {
  const ctx = {} as LogoutContext;
  let browser: ConformanceBrowser;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const sessions: BrowserSession[] = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    ctx.op = await startConformanceOp({
      https: true,
      env: { ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' },
      clients: [{
        name: 'Back-channel RP', pkce: 'optional',
        extraArgs: ['--post-logout-redirect-uri', POST_LOGOUT_REDIRECT_URI, '--backchannel-logout-uri', receiver.url],
      }],
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
    await new Promise((r) => receiver?.server.close(r));
  });

  const modules: Record<string, () => Promise<void>> = {
    async 'oidcc-backchannel-logout-discovery-endpoint-verification'() {
      const doc = await discovery(ctx.op);
      // CheckDiscEndpointAllEndpointsAreHttps
      for (const [key, value] of Object.entries(doc)) {
        if (key.endsWith('_endpoint')) expect(new URL(value as string).protocol).toBe('https:');
      }
      // CheckDiscEndpointBackchannelLogoutSupported / ...SessionSupported: true (absent means false)
      expect(doc.backchannel_logout_supported).toBe(true);
      expect(doc.backchannel_logout_session_supported).toBe(true);
      // CheckDiscEndSessionEndpoint
      expect(new URL(doc.end_session_endpoint).protocol).toBe('https:');
    },

    async 'oidcc-backchannel-rp-initiated-logout'() {
      const session = await browser.newSession();
      sessions.push(session);
      const login = await signIn(ctx, session);
      // the ID token carries the session id the logout token must repeat (backchannel_logout_session_required)
      expect(typeof login.claims.sid).toBe('string');
      const before = receiver.received.length;

      const state = endSessionState();
      const shown = await endSession(ctx, session, { id_token_hint: login.idToken, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state });
      expect(shown.kind).toBe('confirm');
      // front channel: CheckPostLogoutState, CheckForUnexpectedParametersInPostLogoutRedirect
      expectPostLogoutRedirect(await confirmLogout(ctx, session), state);

      // back channel: one POST of a form with only logout_token
      const request = await waitFor('the back-channel logout request', () => receiver.received[before]);
      expect(request.method).toBe('POST');
      expect(request.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      const form = new URLSearchParams(request.body);
      expect([...form.keys()]).toEqual(['logout_token']);
      const logoutToken = form.get('logout_token')!;

      // ValidateLogoutTokenSignature: signed (never alg none, never encrypted here) with a key of the OP's JWKS
      const header = decodeProtectedHeader(logoutToken);
      expect(header.alg).not.toBe('none');
      expect((await discovery(ctx.op)).id_token_signing_alg_values_supported).toContain(header.alg);
      const { payload: claims } = await jwtVerify(logoutToken, createLocalJWKSet(await jwks(ctx.op)));

      // ValidateLogoutTokenClaims
      const now = Math.floor(Date.now() / 1000);
      expect(claims.iss).toBe(ctx.op.issuer);
      expect(Array.isArray(claims.aud) ? claims.aud : [claims.aud]).toContain(ctx.client.clientId);
      expect(typeof claims.iat).toBe('number');
      expect(claims.iat!).toBeLessThanOrEqual(now + 300);
      expect(claims.iat!).toBeGreaterThan(now - 86_400);
      expect(typeof claims.jti).toBe('string');
      expect(claims.jti!.length).toBeGreaterThan(0);
      expect(claims.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      // CheckIdTokenSubMatchesLogoutToken / CheckIdTokenSidMatchesLogoutToken (each when present), CheckLogoutTokenHasSubOrSid
      expect(claims.sub !== undefined || claims.sid !== undefined).toBe(true);
      if (claims.sub !== undefined) expect(claims.sub).toBe(login.claims.sub);
      if (claims.sid !== undefined) expect(claims.sid).toBe(login.claims.sid);
      // certification requires sid support: it is there
      expect(claims.sid).toBe(login.claims.sid);
      // CheckLogoutTokenNoNonce
      expect(claims).not.toHaveProperty('nonce');
      // exactly one notification for this logout
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.received.length - before).toBe(1);

      // the second authorization, prompt=none: logged out
      await expectLoggedOut(ctx, session);
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
