import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import * as oauth from 'openid-client';
import type { Context } from 'koa';
import type { default as Provider } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { withActor } from '../services/audit.js';
import { AccountDisabledError } from '../services/accounts.js';
import { withdrawConsents } from '../services/consents.js';
import {
  ACCOUNT_CLIENT_ID, accountOverview, accountPageUrl, IdentityOfAnotherAccountError, linkIdentity, signOutEverywhere,
  type AccountOverview,
} from '../services/account-page.js';
import { UpstreamError, type Upstream } from '../federation/index.js';
import { render } from './views.js';
import { formBody } from './current-interaction.js';
import { PageError, renderPageError } from './page-error.js';
import { PENDING_COOKIE, startUpstream, type PendingUpstream } from './upstream-login.js';
import { SCOPE_TEXT } from './consent-summary.js';

/**
 * The self-service account page, /account: the upstream identities that sign
 * in to the account (and linking another one), the apps with access (and
 * withdrawing it), and signing out everywhere.
 *
 * It signs in like any app: with no session, the browser goes through an
 * authorization request of the built-in first-party client `gatehouse-account`
 * (code + PKCE, state in a short signed cookie), and the page reads
 * oidc-provider's session once it is back; the code is checked and destroyed,
 * never exchanged. Every POST carries a synchronizer token bound to the
 * session and the account; every page is no-store with the strict CSP (views.ts).
 */

export interface AccountPageDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  upstreams: Map<string, Upstream>;
  issuer: string;
  logger: Logger;
}

/** The account page's own authorization request in flight: its state and PKCE verifier. */
interface PendingSignIn {
  state: string;
  codeVerifier: string;
}

/** A link started here: the pending upstream round trip of upstream-login.ts, bound to the account instead of an interaction. */
type PendingLink = Omit<PendingUpstream, 'uid' | 'purpose'> & { purpose: 'link'; accountId: string };

const SIGN_IN_COOKIE = 'gatehouse.account-signin';
const CSRF_COOKIE = 'gatehouse.account-csrf';
// 10 minutes, in ms
const SIGN_IN_MAX_AGE = 10 * 60 * 1000;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

const LINK_ERROR_TEXT: Record<UpstreamError['kind'], (name: string) => string> = {
  denied: (name) => `You cancelled linking ${name}. Nothing was changed.`,
  oauth: (name) => `${name} refused. Nothing was changed; please try again.`,
  network: (name) => `${name} could not be reached. Nothing was changed; please try again in a moment.`,
  unexpected: (name) => `Linking ${name} did not work. Nothing was changed; please try again.`,
};

const formExpired = () => new PageError(403, 'This form has expired', 'Please go back, reload the page and try again.', '/account');
const linkExpired = () =>
  new PageError(400, 'This link has expired', 'It was already used, or it took too long. Go back to your account and try again.', '/account');

const dateFormat = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeZone: 'UTC' });
const words = (s: string) => s.split(' ').filter(Boolean);

function readJsonCookie<T>(ctx: Context, name: string): Partial<T> | undefined {
  const raw = ctx.cookies.get(name, { signed: true });
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as unknown;
    return value && typeof value === 'object' ? (value as Partial<T>) : undefined;
  } catch {
    return undefined;
  }
}

const sameString = (a: unknown, b: unknown): boolean => {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
};

export function accountPageRoutes(deps: AccountPageDeps): Router {
  const { provider, db, cache, upstreams, issuer, logger } = deps;
  const router = new Router();
  const redirectUri = accountPageUrl(issuer);

  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof PageError) return renderPageError(ctx, err);
      throw err;
    }
  });

  /**
   * Who is signed in: oidc-provider's session and its account. `session` without
   * `account`: the browser has a session, but its account was deleted or disabled.
   */
  async function whoIsSignedIn(ctx: Context): Promise<{ session?: { uid: string; accountId: string }; account?: AccountOverview }> {
    const session = await provider.Session.get(ctx);
    if (!session.accountId) return {};
    const account = (await accountOverview(db, session.accountId)) ?? undefined;
    return { session: { uid: session.uid, accountId: session.accountId }, account };
  }

  async function signedIn(ctx: Context): Promise<{ session: { uid: string; accountId: string }; account: AccountOverview } | undefined> {
    const { session, account } = await whoIsSignedIn(ctx);
    return session && account ? { session, account } : undefined;
  }

  // ---------------------------------------------------------------- CSRF

  const csrfBinding = (s: { uid: string; accountId: string }) => `${s.uid}/${s.accountId}`;

  function csrfToken(ctx: Context, s: { uid: string; accountId: string }): string {
    const existing = csrfTokenOf(ctx, s);
    if (existing) return existing;
    const token = randomBytes(32).toString('base64url');
    ctx.cookies.set(CSRF_COOKIE, `${csrfBinding(s)}.${token}`, {
      path: '/account', httpOnly: true, sameSite: 'strict', signed: true, secure: ctx.secure, overwrite: true,
    });
    return token;
  }

  function csrfTokenOf(ctx: Context, s: { uid: string; accountId: string }): string | undefined {
    const value = ctx.cookies.get(CSRF_COOKIE, { signed: true });
    const dot = value?.lastIndexOf('.') ?? -1;
    if (!value || dot < 0 || value.slice(0, dot) !== csrfBinding(s)) return undefined;
    const token = value.slice(dot + 1);
    return TOKEN.test(token) ? token : undefined;
  }

  /** For a form POST: the CSRF token first (bound to this session and account), then the signed-in person. */
  async function formSignedIn(ctx: Context) {
    const form = (ctx.request as unknown as { body?: Record<string, unknown> }).body ?? {};
    const person = await signedIn(ctx);
    const expected = person && csrfTokenOf(ctx, person.session);
    if (!person || !expected || !sameString(form.csrf, expected)) throw formExpired();
    return { ...person, form, actor: { type: 'account' as const, id: person.session.accountId, address: ctx.ip } };
  }

  // ---------------------------------------------------------------- signing in

  /** Sends the browser through an authorization request of the account page's client. */
  async function startSignIn(ctx: Context, prompt?: 'login'): Promise<void> {
    const pending: PendingSignIn = { state: oauth.randomState(), codeVerifier: oauth.randomPKCECodeVerifier() };
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      state: pending.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      ...(prompt ? { prompt } : {}),
    }).toString();
    ctx.cookies.set(SIGN_IN_COOKIE, JSON.stringify(pending), {
      path: '/account', httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, maxAge: SIGN_IN_MAX_AGE, overwrite: true,
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(url.href);
  }

  /**
   * oidc-provider sent the browser back: the state must be this browser's, and
   * the code (never exchanged: the session is what signs the page in) must be
   * the account page's, for this browser's PKCE challenge; it is destroyed.
   */
  async function finishSignIn(ctx: Context): Promise<void> {
    const pending = readJsonCookie<PendingSignIn>(ctx, SIGN_IN_COOKIE);
    // single use
    ctx.cookies.set(SIGN_IN_COOKIE, null, { path: '/account', signed: true, overwrite: true });
    const { code, state, error } = ctx.query;
    if (!pending?.state || !pending.codeVerifier || !sameString(state, pending.state)) throw linkExpired();
    if (error !== undefined || typeof code !== 'string') {
      const denied = error === 'access_denied';
      throw new PageError(400, denied ? 'Sign-in cancelled' : 'Sign-in failed', denied ? 'You did not sign in.' : 'Signing in did not work. Please try again.', '/account');
    }
    const issued = await provider.AuthorizationCode.find(code);
    if (issued) {
      const challenge = createHash('sha256').update(pending.codeVerifier).digest('base64url');
      if (issued.clientId !== ACCOUNT_CLIENT_ID || issued.codeChallenge !== challenge) throw linkExpired();
      await issued.destroy();
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect('/account');
  }

  function renderSignedOut(ctx: Context, message: string): void {
    render(ctx, 'account', { signedOut: true, message });
  }

  router.get('/account', async (ctx) => {
    if (ctx.query.state !== undefined || ctx.query.code !== undefined || ctx.query.error !== undefined) return finishSignIn(ctx);
    const { session, account } = await whoIsSignedIn(ctx);
    if (!session) return startSignIn(ctx);
    // a session whose account was deleted or disabled: say so, rather than sign in to it again
    if (!account) return renderSignedOut(ctx, 'This account is no longer available. Sign in again to continue.');
    return render(ctx, 'account', {
      signedOut: false,
      csrf: csrfToken(ctx, session),
      notice: noticeFor(ctx, account),
      ...(await describeAccount(account)),
    });
  });

  // the "signed out" page's way back in: always asks to sign in
  router.get('/account/sign-in', (ctx) => startSignIn(ctx, 'login'));

  // ---------------------------------------------------------------- what the page shows

  const upstreamName = (id: string) => upstreams.get(id)?.name ?? id;

  function noticeFor(ctx: Context, account: AccountOverview): string | undefined {
    const { linked, already, withdrawn } = ctx.query;
    if (typeof linked === 'string' && account.identities.some((i) => i.provider === linked)) return `${upstreamName(linked)} is now linked to your account.`;
    if (typeof already === 'string' && account.identities.some((i) => i.provider === already)) return `That ${upstreamName(already)} account was already linked to yours.`;
    if (withdrawn === '1') return 'Access withdrawn. The app will have to ask you again.';
    return undefined;
  }

  async function describeAccount(account: AccountOverview) {
    const apps = [];
    for (const consent of account.consents) {
      const client = await cache.client(consent.clientId);
      const grant = await provider.Grant.find(consent.grantId);
      const oidcScopes = grant ? words(grant.getOIDCScope()) : [];
      const apis = [];
      for (const identifier of Object.keys(grant?.resources ?? {})) {
        apis.push({ name: (await cache.api(identifier))?.name ?? identifier, scopes: words(grant!.getResourceScope(identifier)) });
      }
      apps.push({
        clientId: consent.clientId,
        name: client?.name ?? consent.clientId,
        since: dateFormat.format(consent.createdAt),
        sinceIso: consent.createdAt.toISOString(),
        scopes: oidcScopes.map((s) => SCOPE_TEXT[s] ?? `Use the scope ${s}`),
        apis,
      });
    }
    return {
      who: account.name ?? account.username ?? account.email ?? account.identities[0]?.email ?? null,
      email: account.email,
      identities: account.identities.map((i) => ({
        name: upstreamName(i.provider),
        email: i.email,
        since: dateFormat.format(i.linkedAt),
        sinceIso: i.linkedAt.toISOString(),
      })),
      upstreams: [...upstreams.values()].map((u) => ({ id: u.id, name: u.name, linked: account.identities.some((i) => i.provider === u.id) })),
      apps,
    };
  }

  // ---------------------------------------------------------------- linking another upstream

  router.post('/account/link/:provider', formBody, async (ctx) => {
    const { session } = await formSignedIn(ctx);
    const upstream = upstreams.get(ctx.params.provider);
    if (!upstream) throw new PageError(404, 'Unknown sign-in method', 'Choose one of the sign-in options on your account page.', '/account');
    const link: Pick<PendingLink, 'purpose' | 'accountId'> = { purpose: 'link', accountId: session.accountId };
    await startUpstream(ctx, upstream, issuer, link, (err) => linkFailure(err, upstream, 'linking could not start'));
  });

  function linkFailure(err: unknown, upstream: Upstream, step: string): PageError {
    const e = err instanceof UpstreamError ? err : new UpstreamError('unexpected', String(err), { cause: err });
    logger.warn({ provider: upstream.id, kind: e.kind, reason: e.message }, step);
    const denied = e.kind === 'denied';
    return new PageError(denied ? 400 : 502, denied ? 'Linking cancelled' : 'Linking failed', LINK_ERROR_TEXT[e.kind](upstream.name), '/account');
  }

  router.get('/account/link/:provider/callback', async (ctx) => {
    const pending = readJsonCookie<PendingLink>(ctx, PENDING_COOKIE);
    // single use: a replayed callback finds nothing pending
    ctx.cookies.set(PENDING_COOKIE, null, { signed: true, overwrite: true });
    const upstream = upstreams.get(ctx.params.provider);
    if (pending?.purpose !== 'link' || pending.provider !== ctx.params.provider || !upstream
      || typeof pending.state !== 'string' || typeof pending.nonce !== 'string' || typeof pending.codeVerifier !== 'string') {
      throw linkExpired();
    }
    // still signed in, as the account that started it
    const person = await signedIn(ctx);
    if (!person || person.session.accountId !== pending.accountId) throw linkExpired();

    const callbackUrl = new URL(`${issuer}/oauth2/${upstream.id}/callback${ctx.search}`);
    let profile;
    try {
      profile = await upstream.finish(callbackUrl, { state: pending.state, nonce: pending.nonce, codeVerifier: pending.codeVerifier });
    } catch (err) {
      throw linkFailure(err, upstream, 'linking failed at the upstream');
    }
    const accountId = person.session.accountId;
    let linked: boolean;
    try {
      ({ linked } = await withActor({ type: 'account', id: accountId, address: ctx.ip }, () => linkIdentity(db, accountId, profile)));
    } catch (err) {
      if (err instanceof IdentityOfAnotherAccountError) {
        logger.info({ provider: upstream.id, accountId }, 'link refused: the identity belongs to another account');
        throw new PageError(409, 'Already linked elsewhere', `This ${upstream.name} account is already linked to another Gatehouse account.`, '/account');
      }
      if (err instanceof AccountDisabledError) throw new PageError(403, 'Account disabled', 'This account is disabled. Contact the administrator.');
      throw err;
    }
    logger.info({ provider: upstream.id, accountId, linked }, linked ? 'identity linked' : 'identity already linked');
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`/account?${linked ? 'linked' : 'already'}=${encodeURIComponent(upstream.id)}`);
  });

  // ---------------------------------------------------------------- withdrawing an app's access

  router.post('/account/apps/withdraw', formBody, async (ctx) => {
    const { session, form, actor } = await formSignedIn(ctx);
    const clientId = form.client;
    if (typeof clientId !== 'string' || !clientId) throw new PageError(400, 'That did not work', 'Choose an app on your account page.', '/account');
    const withdrawn = await withActor(actor, () => withdrawConsents(db, { accountId: session.accountId, clientId }));
    logger.info({ accountId: session.accountId, clientId, withdrawn: withdrawn.length }, 'consent withdrawn on the account page');
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(withdrawn.length ? '/account?withdrawn=1' : '/account');
  });

  // ---------------------------------------------------------------- signing out everywhere

  router.post('/account/sign-out-everywhere', formBody, async (ctx) => {
    const { session } = await formSignedIn(ctx);
    const ended = await withActor({ type: 'account', id: session.accountId, address: ctx.ip }, () => signOutEverywhere(db, session.accountId));
    logger.info({ accountId: session.accountId, ended }, 'signed out everywhere');
    ctx.cookies.set(CSRF_COOKIE, null, { path: '/account', signed: true, overwrite: true });
    renderSignedOut(ctx, `You are signed out on every device and browser (${ended === 1 ? '1 session' : `${ended} sessions`} ended). Apps you allowed keep their access until you withdraw it.`);
  });

  return router;
}
