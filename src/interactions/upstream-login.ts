import type Router from '@koa/router';
import * as oauth from 'openid-client';
import type { Context } from 'koa';
import { AccountDisabledError, signInWith, type SignInResult } from '../services/accounts.js';
import { recordAuditHot, recordAuditQuietly } from '../services/audit.js';
import { UpstreamError, type Reauthentication, type Upstream } from '../federation/index.js';
import { authenticationOutcome, essentialAcr, namedSubject, promptsLogin, wantsReauthentication, type AuthenticationRequest } from '../services/authentication.js';
import { currentInteraction, finishStep, formInteraction } from './current-interaction.js';
import { formBody } from '../web/form-body.js';
import { accountDisabled, PageError, signInLinkExpired } from '../web/page-error.js';
import { redirectTo } from '../web/pages.js';
import { readJsonCookie } from '../web/cookies.js';
import type { InteractionDeps } from './routes.js';

/** The pending upstream sign-in, kept in a short-lived signed cookie bound to the interaction. */
export interface PendingUpstream {
  uid: string;
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  /** 'link': started on the account page, which finishes it (account-page.ts, bound to the account, no uid); absent: a sign-in */
  purpose?: 'link';
  /** a sign-in: when the person was sent upstream, seconds (prompt=login is checked against it) */
  startedAt?: number;
}

export const PENDING_COOKIE = 'gatehouse.upstream';
// 10 minutes, in ms
export const PENDING_MAX_AGE = 10 * 60 * 1000;

const ERROR_TEXT: Record<UpstreamError['kind'], (name: string) => string> = {
  denied: (name) => `You cancelled signing in with ${name}.`,
  oauth: (name) => `${name} refused the sign-in. Please try again.`,
  network: (name) => `${name} could not be reached. Please try again in a moment.`,
  unexpected: (name) => `Signing in with ${name} did not work. Please try again.`,
};

/** A failure to write the trail is logged; the sign-in goes on. */
const auditFailed = (deps: InteractionDeps) => (err: unknown) => deps.logger.warn({ err }, 'could not record an audit event');

/** An upstream failure as the page the person sees, with a way back to the login page. */
function upstreamFailure(err: unknown, upstream: Upstream, uid: string, deps: InteractionDeps, step: string): PageError {
  const e = err instanceof UpstreamError ? err : new UpstreamError('unexpected', String(err), { cause: err });
  deps.logger.warn({ provider: upstream.id, kind: e.kind, reason: e.message }, step);
  deps.metrics?.signIns.inc({ provider: upstream.id, outcome: e.kind });
  void recordAuditQuietly(deps.db, { action: 'sign_in.failed', outcome: 'failure', details: { provider: upstream.id, kind: e.kind } }, auditFailed(deps));
  const denied = e.kind === 'denied';
  return new PageError(denied ? 400 : 502, denied ? 'Sign-in cancelled' : 'Sign-in failed', ERROR_TEXT[e.kind](upstream.name), `/interaction/${uid}`);
}

/** The pending cookie as this door wrote it (it is signed); each route checks the fields it needs. */
const readPending = (ctx: Context) => readJsonCookie<PendingUpstream>(ctx, PENDING_COOKIE) as PendingUpstream | undefined;

/**
 * Signing in through an upstream: POST login/:provider starts it (state,
 * nonce, PKCE), the upstream redirects to /oauth2/:provider/callback, which
 * bounces to the interaction's own path, where the code is exchanged and the
 * person's account found or created.
 */
/**
 * Sends the browser to an upstream: fresh state, nonce and PKCE verifier, kept
 * in the short-lived signed pending cookie with what the callback needs
 * (`extra`: the interaction, or the account a link is for). Used by sign-in
 * and by linking on the account page.
 */
export async function startUpstream<T extends object>(
  ctx: Context, upstream: Upstream, issuer: string, extra: T, failure: (err: unknown) => Error, reauth?: Reauthentication,
): Promise<void> {
  const pending = {
    ...extra,
    provider: upstream.id,
    state: oauth.randomState(),
    nonce: oauth.randomNonce(),
    codeVerifier: oauth.randomPKCECodeVerifier(),
  };
  let url: URL;
  try {
    // the redirect URI registered at the upstream; its route reads the pending cookie
    const fresh = reauth && wantsReauthentication(reauth) ? { login: reauth.login, maxAge: reauth.maxAge } : undefined;
    url = await upstream.authorizationUrl(pending, `${issuer}/oauth2/${upstream.id}/callback`, fresh);
  } catch (err) {
    throw failure(err);
  }
  ctx.cookies.set(PENDING_COOKIE, JSON.stringify(pending), {
    httpOnly: true,
    // lax: the upstream's redirect back is a cross-site top-level GET
    sameSite: 'lax',
    signed: true,
    secure: ctx.secure,
    maxAge: PENDING_MAX_AGE,
    overwrite: true,
  });
  redirectTo(ctx, url.href, 302);
}

/** The sign-in does not give what the app asked for (a fresh authentication, the person it named): the app gets the error, and no session. */
async function refuseSignIn(ctx: Context, deps: InteractionDeps, upstream: Upstream, refusal: { error: string; description: string }): Promise<void> {
  deps.logger.info({ provider: upstream.id, error: refusal.error, reason: refusal.description }, 'sign-in does not meet the request');
  deps.metrics?.signIns.inc({ provider: upstream.id, outcome: 'unmet' });
  await recordAuditQuietly(deps.db, { action: 'sign_in.failed', outcome: 'failure', details: { provider: upstream.id, kind: refusal.error } }, auditFailed(deps));
  await finishStep(deps.provider, ctx, { error: refusal.error, error_description: refusal.description }, false);
}

/** Whether the person who signed in is the one an id_token_hint (or claims sub value) names, if any. */
function sameSubject(params: Record<string, unknown>, accountId: string): boolean {
  const named = namedSubject(params.id_token_hint, params.claims);
  return named === undefined || named === accountId;
}

/** What the authorization request asks of the sign-in (prompt=login, max_age, essential acr). */
function authenticationRequest(params: Record<string, unknown>, startedAt: number): AuthenticationRequest {
  const maxAge = params.max_age === undefined ? undefined : Number(params.max_age);
  return {
    login: promptsLogin(params.prompt),
    maxAge: maxAge !== undefined && Number.isInteger(maxAge) && maxAge >= 0 ? maxAge : undefined,
    essentialAcr: essentialAcr(params.claims),
    startedAt,
  };
}

export function upstreamLoginRoutes(router: Router, deps: InteractionDeps): void {
  const { provider, upstreams, issuer, logger } = deps;

  router.post('/interaction/:uid/login/:provider', formBody, async (ctx) => {
    const interaction = await formInteraction(provider, ctx, ctx.params.uid, 'login');
    const upstream = upstreams.get(ctx.params.provider);
    if (!upstream) throw new PageError(404, 'Unknown sign-in method', 'Choose one of the sign-in options.', `/interaction/${interaction.uid}`);
    const startedAt = Math.floor(Date.now() / 1000);
    await startUpstream(
      ctx, upstream, issuer, { uid: interaction.uid, startedAt },
      (err) => upstreamFailure(err, upstream, interaction.uid, deps, 'upstream sign-in could not start'),
      authenticationRequest(interaction.params, startedAt),
    );
  });

  // The upstream's redirect lands here; the interaction cookie is scoped to
  // /interaction/:uid, so bounce there with the same query (a link: to the account page).
  router.get('/oauth2/:provider/callback', async (ctx) => {
    const pending = readPending(ctx);
    if (!pending || pending.provider !== ctx.params.provider) throw signInLinkExpired();
    if (pending.purpose === 'link') return redirectTo(ctx, `/account/link/${encodeURIComponent(pending.provider)}/callback${ctx.search}`, 302);
    redirectTo(ctx, `/interaction/${encodeURIComponent(pending.uid)}/callback/${encodeURIComponent(pending.provider)}${ctx.search}`, 302);
  });

  router.get('/interaction/:uid/callback/:provider', async (ctx) => {
    const pending = readPending(ctx);
    // single use: a replayed callback finds no pending sign-in
    ctx.cookies.set(PENDING_COOKIE, null, { signed: true, overwrite: true });
    if (!pending || pending.purpose || pending.uid !== ctx.params.uid || pending.provider !== ctx.params.provider) throw signInLinkExpired();
    const interaction = await currentInteraction(provider, ctx, pending.uid);
    const upstream = upstreams.get(pending.provider);
    if (interaction.prompt.name !== 'login' || !upstream) throw signInLinkExpired();

    const callbackUrl = new URL(`${issuer}/oauth2/${upstream.id}/callback${ctx.search}`);
    let profile;
    try {
      profile = await upstream.finish(callbackUrl, pending);
    } catch (err) {
      throw upstreamFailure(err, upstream, interaction.uid, deps, 'upstream sign-in failed');
    }
    const outcome = authenticationOutcome(upstream, authenticationRequest(interaction.params, pending.startedAt ?? 0), profile.authentication ?? {}, Math.floor(Date.now() / 1000));
    if (!outcome.ok) return refuseSignIn(ctx, deps, upstream, outcome);
    let signedIn: SignInResult;
    try {
      signedIn = await signInWith(deps.db, profile, { linkVerifiedEmails: deps.linkVerifiedEmails, hot: deps.hot });
    } catch (err) {
      if (!(err instanceof AccountDisabledError)) throw err;
      // an admin disabled the account: a page that says so, and the refusal in the trail
      logger.info({ provider: upstream.id, accountId: err.accountId }, 'sign-in refused: account disabled');
      deps.metrics?.signIns.inc({ provider: upstream.id, outcome: 'disabled' });
      await recordAuditQuietly(deps.db, {
        action: 'sign_in.failed', outcome: 'failure', target: { type: 'account', id: err.accountId }, details: { provider: upstream.id, kind: 'disabled' },
      }, auditFailed(deps));
      throw accountDisabled(`/interaction/${interaction.uid}`);
    }
    const { account, created, linked } = signedIn;
    if (!sameSubject(interaction.params, account.id)) {
      return refuseSignIn(ctx, deps, upstream, { error: 'login_required', description: 'signed in as someone other than the person the request names' });
    }
    logger.info({ provider: upstream.id, accountId: account.id, created, linked }, 'signed in');
    deps.metrics?.signIns.inc({ provider: upstream.id, outcome: 'success' });
    const actor = { type: 'account' as const, id: account.id, address: ctx.ip };
    const target = { type: 'account' as const, id: account.id };
    const details = { provider: upstream.id };
    await recordAuditHot(deps.hot, [
      ...(created ? [{ action: 'account.created' as const, actor, target, details }] : []),
      ...(linked ? [{ action: 'account.linked' as const, actor, target, details }] : []),
      { action: 'sign_in.succeeded', actor, target, details },
    ], auditFailed(deps));
    await finishStep(provider, ctx, { login: { accountId: account.id, ts: outcome.authTime, acr: outcome.acr, amr: outcome.amr } }, false);
  });
}
