import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import * as oauth from 'openid-client';
import { errors, type default as Provider } from 'oidc-provider';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import type { Catalog } from '../storage/catalog.js';
import { signInWith } from '../storage/accounts.js';
import { rememberConsent } from '../storage/consents.js';
import { UpstreamError, type Upstream } from '../federation/index.js';
import { render } from './views.js';
import { checkCsrf, csrfToken } from './csrf.js';

export interface InteractionDeps {
  provider: Provider;
  db: Db;
  catalog: Catalog;
  upstreams: Map<string, Upstream>;
  issuer: string;
  linkVerifiedEmails: boolean;
  logger: Logger;
}

/** The pending upstream sign-in, kept in a short-lived signed cookie bound to the interaction. */
interface PendingUpstream {
  uid: string;
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

const UPSTREAM_COOKIE = 'gatehouse.upstream';
// 10 minutes, in ms
const UPSTREAM_COOKIE_MAX_AGE = 10 * 60 * 1000;

/** Names the views show for scopes. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your account ID)',
  profile: 'See your name, username and picture',
  email: 'See your email address',
  offline_access: 'Stay signed in to the app when you are away',
};

const ERROR_TEXT: Record<UpstreamError['kind'], (name: string) => string> = {
  denied: (name) => `You cancelled signing in with ${name}.`,
  oauth: (name) => `${name} refused the sign-in. Please try again.`,
  network: (name) => `${name} could not be reached. Please try again in a moment.`,
  unexpected: (name) => `Signing in with ${name} did not work. Please try again.`,
};

/**
 * The interaction routes: the login page, the upstream round trip, consent.
 * Every POST checks its CSRF token first, then the prompt it expects; every
 * page is no-store with a strict CSP (views.ts).
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, upstreams, issuer, logger } = deps;
  const router = new Router();
  const body = bodyParser({ enableTypes: ['form'], formLimit: '16kb' });

  /** Renders the error page and keeps a way back to the login page. */
  function fail(ctx: Context, status: number, title: string, message: string, back?: string) {
    render(ctx, 'error', { title, message, back }, status);
  }

  async function details(ctx: Context) {
    try {
      return await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      if (err instanceof errors.SessionNotFound) return undefined;
      throw err;
    }
  }

  const expired = (ctx: Context) =>
    fail(ctx, 400, 'Your sign-in session has expired', 'Go back to the application and start signing in again.');

  /** Ends this step. A new login replaces earlier results; consent keeps the login it follows. */
  async function finish(ctx: Context, result: Parameters<Provider['interactionResult']>[2], mergeWithLastSubmission: boolean) {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await details(ctx);
    if (!interaction || interaction.uid !== ctx.params.uid) return expired(ctx);
    const client = await provider.Client.find(String(interaction.params.client_id));
    const clientName = client?.clientName ?? client?.clientId ?? 'the application';
    const csrf = csrfToken(ctx, interaction.uid);
    if (interaction.prompt.name === 'login') {
      return render(ctx, 'login', {
        uid: interaction.uid,
        clientName,
        csrf,
        providers: [...upstreams.values()].map((u) => ({ id: u.id, name: u.name })),
      });
    }
    if (interaction.prompt.name === 'consent') {
      const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const scopes = (d.missingOIDCScope ?? []).map((s) => SCOPE_TEXT[s] ?? s);
      const apis = await Promise.all(
        Object.entries(d.missingResourceScopes ?? {}).map(async ([identifier, apiScopes]) => ({
          name: (await deps.catalog.resource(identifier))?.name ?? identifier,
          identifier,
          scopes: apiScopes,
        })),
      );
      return render(ctx, 'consent', { uid: interaction.uid, clientName, csrf, scopes, apis });
    }
    return fail(ctx, 400, 'That did not work', 'This step of signing in is not supported.');
  });

  /** CSRF first, then the interaction, then the prompt it must be at. */
  async function guard(ctx: Context, ...prompts: string[]) {
    const form = (ctx.request as unknown as { body?: Record<string, unknown> }).body ?? {};
    if (!checkCsrf(ctx, form.csrf)) {
      fail(ctx, 403, 'This form has expired', 'Please go back, reload the page and try again.', `/interaction/${ctx.params.uid}`);
      return undefined;
    }
    const interaction = await details(ctx);
    if (!interaction || interaction.uid !== ctx.params.uid) {
      expired(ctx);
      return undefined;
    }
    if (!prompts.includes(interaction.prompt.name)) {
      fail(ctx, 400, 'That did not work', 'This step of signing in is already done.', `/interaction/${interaction.uid}`);
      return undefined;
    }
    return interaction;
  }

  router.post('/interaction/:uid/login/:provider', body, async (ctx) => {
    const interaction = await guard(ctx, 'login');
    if (!interaction) return;
    const upstream = upstreams.get(ctx.params.provider);
    if (!upstream) return fail(ctx, 404, 'Unknown sign-in method', 'Choose one of the sign-in options.', `/interaction/${interaction.uid}`);
    const pending: PendingUpstream = {
      uid: interaction.uid,
      provider: upstream.id,
      state: oauth.randomState(),
      nonce: oauth.randomNonce(),
      codeVerifier: oauth.randomPKCECodeVerifier(),
    };
    let url: URL;
    try {
      url = await upstream.authorizationUrl(pending, `${issuer}/oauth2/${upstream.id}/callback`);
    } catch (err) {
      const e = err instanceof UpstreamError ? err : new UpstreamError('unexpected', String(err));
      logger.warn({ provider: upstream.id, kind: e.kind, reason: e.message }, 'upstream sign-in could not start');
      return fail(ctx, 502, 'Sign-in failed', ERROR_TEXT[e.kind](upstream.name), `/interaction/${interaction.uid}`);
    }
    ctx.cookies.set(UPSTREAM_COOKIE, JSON.stringify(pending), {
      httpOnly: true,
      // lax: the upstream's redirect back is a cross-site top-level GET
      sameSite: 'lax',
      signed: true,
      secure: ctx.secure,
      maxAge: UPSTREAM_COOKIE_MAX_AGE,
      overwrite: true,
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(url.href);
  });

  function readPending(ctx: Context): PendingUpstream | undefined {
    const raw = ctx.cookies.get(UPSTREAM_COOKIE, { signed: true });
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as PendingUpstream;
    } catch {
      return undefined;
    }
  }

  const noPending = (ctx: Context) =>
    fail(ctx, 400, 'This sign-in link has expired', 'It was already used, or it took too long. Go back to the application and sign in again.');

  // The upstream's redirect lands here; the interaction cookie is scoped to
  // /interaction/:uid, so bounce there with the same query.
  router.get('/oauth2/:provider/callback', async (ctx) => {
    const pending = readPending(ctx);
    if (!pending || pending.provider !== ctx.params.provider) return noPending(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(`/interaction/${encodeURIComponent(pending.uid)}/callback/${encodeURIComponent(pending.provider)}${ctx.search}`);
  });

  router.get('/interaction/:uid/callback/:provider', async (ctx) => {
    const pending = readPending(ctx);
    // single use: a replayed callback finds no pending sign-in
    ctx.cookies.set(UPSTREAM_COOKIE, null, { signed: true, overwrite: true });
    if (!pending || pending.uid !== ctx.params.uid || pending.provider !== ctx.params.provider) return noPending(ctx);
    const interaction = await details(ctx);
    if (!interaction || interaction.uid !== pending.uid) return expired(ctx);
    if (interaction.prompt.name !== 'login') return noPending(ctx);
    const upstream = upstreams.get(pending.provider);
    if (!upstream) return noPending(ctx);
    const back = `/interaction/${interaction.uid}`;

    const callbackUrl = new URL(`${issuer}/oauth2/${upstream.id}/callback${ctx.search}`);
    let profile;
    try {
      profile = await upstream.finish(callbackUrl, pending);
    } catch (err) {
      const e = err instanceof UpstreamError ? err : new UpstreamError('unexpected', String(err));
      logger.warn({ provider: upstream.id, kind: e.kind, reason: e.message }, 'upstream sign-in failed');
      return fail(ctx, e.kind === 'denied' ? 400 : 502, e.kind === 'denied' ? 'Sign-in cancelled' : 'Sign-in failed', ERROR_TEXT[e.kind](upstream.name), back);
    }
    const { account, created, linked } = await signInWith(deps.db, profile, { linkVerifiedEmails: deps.linkVerifiedEmails });
    logger.info({ provider: upstream.id, accountId: account.id, created, linked }, 'signed in');
    await finish(ctx, { login: { accountId: account.id, amr: [upstream.id] } }, false);
  });

  router.post('/interaction/:uid/confirm', body, async (ctx) => {
    const interaction = await guard(ctx, 'consent');
    if (!interaction) return;
    const accountId = interaction.session!.accountId;
    const clientId = String(interaction.params.client_id);
    const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = (interaction.grantId && (await provider.Grant.find(interaction.grantId))) || new provider.Grant({ accountId, clientId });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    await rememberConsent(deps.db, accountId, clientId, grantId);
    await finish(ctx, { consent: { grantId } }, true);
  });

  router.post('/interaction/:uid/abort', body, async (ctx) => {
    const interaction = await guard(ctx, 'login', 'consent');
    if (!interaction) return;
    await finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, true);
  });

  return router;
}
