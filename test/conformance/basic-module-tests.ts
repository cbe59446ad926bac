/**
 * What each module of oidcc-basic-certification-test-plan asserts (the published module
 * classes in openid-certification/conformance-suite, net.openid.conformance.openid),
 * for both response modes: see basic-modules.ts.
 */
import { expect } from '@jest/globals';
import { UnsecuredJWT } from 'jose';
import {
  authorizationParams, discovery, expectCode, expectError, expectNoStore, introspect, redeemCode, tokenRequest, userinfo, validateIdToken,
  type BasicContext, type ModuleTest,
} from './basic-modules.js';
import { jwks, type BrowserSession } from './support/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** userinfo of a flow's access token, asserted 200 JSON with the ID token's sub. */
async function userinfoOf(ctx: BasicContext, accessToken: string, sub: string, how: 'get' | 'post-header' | 'post-body' = 'get') {
  const res = await userinfo(ctx.op, accessToken, how);
  expect(res.status).toBe(200);
  expect(res.contentType).toMatch(/^application\/json/);
  expect(res.body.sub).toBe(sub);
  return res.body as Record<string, unknown>;
}

/** A request that must end at the redirect URI with a code, without any page shown. */
async function silentFlow(ctx: BasicContext, session: BrowserSession, extra: Record<string, string>) {
  const second = await ctx.flow(session, { extra });
  expect(second.outcome.seen).toEqual([]);
  return second;
}

async function scopeModule(ctx: BasicContext, scope: string, expected: Record<string, unknown>, absent: string[]) {
  const flow = await ctx.flow(await ctx.shared(), { scope });
  const info = await userinfoOf(ctx, flow.accessToken, flow.claims.sub);
  expect(info).toMatchObject(expected);
  for (const claim of absent) expect(info).not.toHaveProperty(claim);
}

/** address and phone: not advertised (the suite skips), and a request for them still succeeds without such claims. */
async function unsupportedScopeModule(ctx: BasicContext, scope: string, expected: Record<string, unknown>) {
  const supported = (await discovery(ctx.op)).scopes_supported as string[];
  for (const s of scope.split(' ').filter((x) => x === 'address' || x === 'phone')) expect(supported).not.toContain(s);
  await scopeModule(ctx, scope, expected, ['address', 'phone_number', 'phone_number_verified']);
}

async function displayModule(ctx: BasicContext, display: string) {
  let shown = '';
  const session = await ctx.session();
  const flow = await ctx.flow(session, {
    extra: { display },
    browser: { onPage: async (which, page) => { if (which === 'login') shown = `${await page.locator('h1').textContent()} / ${await page.getByRole('button', { name: 'Continue with Google' }).count()}`; } },
  });
  expect(shown).toBe('Sign in / 1');
  expect(flow.outcome.seen[0]).toBe('login');
}

/** A request object (or its URI) is refused with `error`, at the redirect URI. */
async function refusedRequestObject(ctx: BasicContext, param: 'request' | 'request_uri', error: string) {
  const request = await authorizationParams(ctx.client, { ...ctx.mode() });
  const object = new UnsecuredJWT({ ...request.params, iss: ctx.client.clientId, aud: ctx.op.issuer }).encode();
  const value = param === 'request' ? object : 'https://rp.conformance.test/request.jwt';
  const outcome = await (await ctx.shared()).authorize({ params: { ...request.params, [param]: value } });
  ctx.expectVia(outcome);
  expectError(outcome, request, error);
}

async function codeReuse(ctx: BasicContext, waitMs: number) {
  const flow = await ctx.flow(await ctx.shared(), { scope: 'openid email' });
  await sleep(waitMs);
  const again = await redeemCode(ctx.op, ctx.client, flow.code);
  expect(again.status).toBe(400);
  expect(again.body.error).toBe('invalid_grant');
  return flow;
}

async function promptLogin(ctx: BasicContext) {
  const session = await ctx.shared();
  const first = await ctx.flow(session);
  await sleep(1100);
  const asked = Math.floor(Date.now() / 1000);
  const second = await ctx.flow(session, { extra: { prompt: 'login' } });
  // the person is asked to sign in again: Gatehouse's login page, then the upstream
  expect(second.outcome.seen).toContain('login');
  expect(second.claims.sub).toBe(first.claims.sub);
  expect(typeof second.claims.auth_time).toBe('number');
  expect(second.claims.auth_time).toBeGreaterThanOrEqual(asked);
  if (first.claims.auth_time !== undefined) expect(second.claims.auth_time).toBeGreaterThan(first.claims.auth_time);
}

async function maxAge1(ctx: BasicContext) {
  const session = await ctx.shared();
  const first = await ctx.flow(session);
  await sleep(1100);
  const asked = Math.floor(Date.now() / 1000);
  // codeFlow requires auth_time, as max_age was sent; the sign-in it reports is this request's
  const second = await ctx.flow(session, { extra: { max_age: '1' } });
  expect(second.claims.sub).toBe(first.claims.sub);
  expect(second.claims.auth_time).toBeGreaterThanOrEqual(asked);
  if (first.claims.auth_time !== undefined) expect(second.claims.auth_time).toBeGreaterThan(first.claims.auth_time);
}

async function maxAge10000(ctx: BasicContext) {
  const session = await ctx.shared();
  const first = await ctx.flow(session, { extra: { max_age: '15000' } });
  const second = await silentFlow(ctx, session, { max_age: '10000' });
  expect(second.claims.sub).toBe(first.claims.sub);
  expect(second.claims.auth_time).toBe(first.claims.auth_time);
}

async function refreshToken(ctx: BasicContext) {
  const scopes = (await discovery(ctx.op)).scopes_supported as string[];
  const scope = scopes.includes('offline_access') ? 'openid email offline_access' : 'openid email';
  const flow = await ctx.flow(await ctx.shared(), { scope, extra: { prompt: 'consent' } });
  const refresh = flow.token.body.refresh_token as string;
  expect(typeof refresh).toBe('string');
  // bound to the client: another client's credentials get invalid_grant
  const stolen = await tokenRequest(ctx.op, ctx.otherClient, { grant_type: 'refresh_token', refresh_token: refresh });
  expect([stolen.status, stolen.body.error]).toEqual([400, 'invalid_grant']);
  const refreshed = await tokenRequest(ctx.op, ctx.client, { grant_type: 'refresh_token', refresh_token: refresh });
  expect(refreshed.status).toBe(200);
  expectNoStore(refreshed.headers);
  if (refreshed.body.id_token) {
    const { claims } = await validateIdToken(ctx.op, refreshed.body.id_token, { clientId: ctx.client.clientId, nonce: flow.claims.nonce, accessToken: refreshed.body.access_token });
    expect(claims.sub).toBe(flow.claims.sub);
  }
  await userinfoOf(ctx, refreshed.body.access_token, flow.claims.sub);
}

export const BASIC_MODULES: Record<string, ModuleTest> = {
  'oidcc-server': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared());
    expectNoStore(flow.token.headers);
    expect(flow.claims.iss).toBe(ctx.op.issuer);
    expect(flow.claims.aud).toBe(ctx.client.clientId);
  },
  'oidcc-response-type-missing': async (ctx) => {
    const request = await authorizationParams(ctx.client, { ...ctx.mode(), extra: { response_type: null } });
    const outcome = await (await ctx.shared()).authorize({ params: request.params });
    ctx.expectVia(outcome);
    expectError(outcome, request, 'invalid_request');
  },
  'oidcc-idtoken-signature': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared());
    expect((await discovery(ctx.op)).id_token_signing_alg_values_supported).toContain(flow.header.alg);
    expect(flow.header.alg).toBe('RS256');
    const keys = (await jwks(ctx.op)).keys.filter((k) => k.kid === flow.header.kid);
    expect(keys).toHaveLength(1);
  },
  'oidcc-idtoken-unsigned': async (ctx) => {
    expect((await discovery(ctx.op)).id_token_signing_alg_values_supported).not.toContain('none');
    const flow = await ctx.flow(await ctx.shared());
    expect(flow.header.alg).not.toBe('none');
  },
  'oidcc-userinfo-get': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { scope: 'openid email profile' });
    expect(await userinfoOf(ctx, flow.accessToken, flow.claims.sub, 'get')).toMatchObject({ email: 'ada@example.com', name: 'Ada Lovelace' });
  },
  'oidcc-userinfo-post-header': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { scope: 'openid email' });
    expect(await userinfoOf(ctx, flow.accessToken, flow.claims.sub, 'post-header')).toMatchObject({ email: 'ada@example.com' });
  },
  'oidcc-userinfo-post-body': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { scope: 'openid email' });
    expect(await userinfoOf(ctx, flow.accessToken, flow.claims.sub, 'post-body')).toMatchObject({ email: 'ada@example.com' });
  },
  'oidcc-ensure-request-without-nonce-succeeds-for-code-flow': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { nonce: false });
    expect(flow.request.params.nonce).toBeUndefined();
    expect(flow.claims.nonce).toBeUndefined();
  },
  'oidcc-scope-profile': (ctx) => scopeModule(ctx, 'openid profile', { name: 'Ada Lovelace' }, ['email']),
  'oidcc-scope-email': (ctx) => scopeModule(ctx, 'openid email', { email: 'ada@example.com', email_verified: true }, ['name']),
  'oidcc-scope-address': (ctx) => unsupportedScopeModule(ctx, 'openid address', {}),
  'oidcc-scope-phone': (ctx) => unsupportedScopeModule(ctx, 'openid phone', {}),
  'oidcc-scope-all': (ctx) => unsupportedScopeModule(ctx, 'openid address email phone profile', { email: 'ada@example.com', name: 'Ada Lovelace' }),
  'oidcc-alternate-happy-flow': async (ctx) => {
    const request = await authorizationParams(ctx.client, { ...ctx.mode(), scope: 'profile email openid' });
    const reversed = Object.fromEntries(Object.entries(request.params).reverse());
    expect(Object.keys(reversed)[0]).not.toBe('client_id');
    const outcome = await (await ctx.shared()).authorize({ params: reversed });
    ctx.expectVia(outcome);
    const token = await redeemCode(ctx.op, ctx.client, expectCode(outcome, request, ctx.op));
    expect(token.status).toBe(200);
    await validateIdToken(ctx.op, token.body.id_token, { clientId: ctx.client.clientId, nonce: request.nonce, accessToken: token.body.access_token });
  },
  'oidcc-display-page': (ctx) => displayModule(ctx, 'page'),
  'oidcc-display-popup': (ctx) => displayModule(ctx, 'popup'),
  'oidcc-prompt-login': promptLogin,
  'oidcc-prompt-none-not-logged-in': async (ctx) => {
    const request = await authorizationParams(ctx.client, { ...ctx.mode(), extra: { prompt: 'none' } });
    const outcome = await (await ctx.session()).authorize({ params: request.params });
    ctx.expectVia(outcome);
    // the suite accepts login_required, interaction_required, consent_required or account_selection_required
    expectError(outcome, request, 'login_required');
  },
  'oidcc-prompt-none-logged-in': async (ctx) => {
    const session = await ctx.shared();
    const first = await ctx.flow(session);
    const second = await silentFlow(ctx, session, { prompt: 'none' });
    expect(second.claims.sub).toBe(first.claims.sub);
    expect(second.claims.auth_time).toBe(first.claims.auth_time);
  },
  'oidcc-max-age-1': maxAge1,
  'oidcc-max-age-10000': maxAge10000,
  'oidcc-ensure-request-with-unknown-parameter-succeeds': async (ctx) => {
    await ctx.flow(await ctx.shared(), { extra: { extra: 'foobar' } });
  },
  'oidcc-id-token-hint': async (ctx) => {
    const session = await ctx.shared();
    const first = await ctx.flow(session);
    const second = await silentFlow(ctx, session, { prompt: 'none', id_token_hint: first.idToken });
    expect(second.claims.sub).toBe(first.claims.sub);
    expect(second.claims.auth_time).toBe(first.claims.auth_time);
  },
  'oidcc-login-hint': async (ctx) => {
    const flow = await ctx.flow(await ctx.session(), { extra: { login_hint: `buffy@${new URL(ctx.op.issuer).hostname}` } });
    expect(flow.outcome.seen[0]).toBe('login');
  },
  'oidcc-ui-locales': async (ctx) => {
    let lang: string | null = null;
    const flow = await ctx.flow(await ctx.session(), {
      extra: { ui_locales: 'se' },
      browser: { onPage: async (which, page) => { if (which === 'login') lang = await page.locator('html').getAttribute('lang'); } },
    });
    expect(flow.outcome.seen[0]).toBe('login');
    expect(lang).toBe('en');
  },
  'oidcc-claims-locales': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { scope: 'openid profile', extra: { claims_locales: 'se' } });
    await userinfoOf(ctx, flow.accessToken, flow.claims.sub);
  },
  'oidcc-ensure-request-with-acr-values-succeeds': async (ctx) => {
    const advertised = ((await discovery(ctx.op)).acr_values_supported as string[] | undefined) ?? [];
    const requested = advertised.length ? advertised : ['1', '2'];
    const flow = await ctx.flow(await ctx.shared(), { extra: { acr_values: requested.join(' ') } });
    if (advertised.length) expect(requested).toContain(flow.claims.acr);
    else expect(flow.claims.acr).toBeUndefined();
  },
  'oidcc-codereuse': async (ctx) => {
    await codeReuse(ctx, 0);
  },
  'oidcc-codereuse-30seconds': async (ctx) => {
    const flow = await codeReuse(ctx, 30_000);
    expect((await userinfo(ctx.op, flow.accessToken)).status).toBe(401);
    const info = await introspect(ctx.op, ctx.client, flow.accessToken);
    expect([info.status, info.body.active]).toEqual([200, false]);
  },
  'oidcc-ensure-registered-redirect-uri': async (ctx) => {
    const request = await authorizationParams(ctx.client, { ...ctx.mode(), extra: { redirect_uri: 'https://rp.conformance.test/not-registered' } });
    const outcome = await (await ctx.shared()).authorize({ params: request.params });
    expect(outcome).toMatchObject({ kind: 'page', status: 400, heading: 'Unknown return address' });
  },
  'oidcc-ensure-post-request-succeeds': async (ctx) => {
    await ctx.flow(await ctx.shared(), { browser: { method: 'POST' } });
  },
  'oidcc-server-client-secret-post': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { client: ctx.postClient, auth: 'client_secret_post' });
    expectNoStore(flow.token.headers);
    expect(flow.claims.aud).toBe(ctx.postClient.clientId);
  },
  'oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported': async (ctx) => {
    expect((await discovery(ctx.op)).request_uri_parameter_supported).not.toBe(true);
    await refusedRequestObject(ctx, 'request_uri', 'request_uri_not_supported');
  },
  'oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported': async (ctx) => {
    expect((await discovery(ctx.op)).request_parameter_supported).not.toBe(true);
    await refusedRequestObject(ctx, 'request', 'request_not_supported');
  },
  'oidcc-claims-essential': async (ctx) => {
    const claims = JSON.stringify({ userinfo: { name: { essential: true } } });
    const flow = await ctx.flow(await ctx.shared(), { extra: { claims } });
    expect(await userinfoOf(ctx, flow.accessToken, flow.claims.sub)).toMatchObject({ name: 'Ada Lovelace' });
  },
  'oidcc-refresh-token': refreshToken,
  'oidcc-ensure-request-with-valid-pkce-succeeds': async (ctx) => {
    const flow = await ctx.flow(await ctx.shared(), { pkce: true });
    expect(flow.request.params.code_challenge_method).toBe('S256');
  },
};

