import Router from '@koa/router';
import type { Context } from 'koa';
import type { default as Provider } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { withActor } from '../services/audit.js';
import { withdrawConsents } from '../services/consents.js';
import { accountOverview, signOutEverywhere, type AccountOverview } from '../services/account-page.js';
import { ACCOUNT_CLIENT_ID, accountPageUrl } from '../services/built-in-clients.js';
import type { Upstream } from '../federation/index.js';
import { render, redirectTo } from '../web/pages.js';
import { formBody, formOf } from '../web/form-body.js';
import { PageError, pageErrors } from '../web/page-error.js';
import { firstPartySignIn, type BrowserSession } from '../web/first-party-sign-in.js';
import { describeAccount, noticeFor } from './page-model.js';
import { linkRoutes } from './link.js';

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
 * session and the account; every page is no-store with the strict CSP (web/pages.ts).
 */

export interface AccountPageDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  upstreams: Map<string, Upstream>;
  issuer: string;
  logger: Logger;
}

export function accountPageRoutes(deps: AccountPageDeps): Router {
  const { provider, db, cache, upstreams, issuer, logger } = deps;
  const router = new Router();
  const door = firstPartySignIn(provider, { clientId: ACCOUNT_CLIENT_ID, path: '/account', redirectUri: accountPageUrl(issuer), issuer });

  router.use(pageErrors());

  /**
   * Who is signed in: oidc-provider's session and its account. `session` without
   * `account`: the browser has a session, but its account was deleted or disabled.
   */
  async function whoIsSignedIn(ctx: Context): Promise<{ session?: BrowserSession; account?: AccountOverview }> {
    const session = await door.session(ctx);
    if (!session) return {};
    return { session, account: (await accountOverview(db, session.accountId)) ?? undefined };
  }

  async function signedIn(ctx: Context): Promise<{ session: BrowserSession; account: AccountOverview } | undefined> {
    const { session, account } = await whoIsSignedIn(ctx);
    return session && account ? { session, account } : undefined;
  }

  /** For a form POST: the CSRF token first (bound to this session and account), then the signed-in person. */
  async function formSignedIn(ctx: Context) {
    const person = await signedIn(ctx);
    door.checkForm(ctx, person?.session);
    return { ...person!, form: formOf(ctx), actor: { type: 'account' as const, id: person!.session.accountId, address: ctx.ip } };
  }

  function renderSignedOut(ctx: Context, message: string): void {
    render(ctx, 'account', { signedOut: true, message });
  }

  router.get('/account', async (ctx) => {
    if (door.isReturn(ctx)) return door.finish(ctx);
    const { session, account } = await whoIsSignedIn(ctx);
    if (!session) return door.start(ctx);
    // a session whose account was deleted or disabled: say so, rather than sign in to it again
    if (!account) return renderSignedOut(ctx, 'This account is no longer available. Sign in again to continue.');
    return render(ctx, 'account', {
      signedOut: false,
      csrf: door.csrf(ctx, session),
      notice: noticeFor(ctx, account, upstreams),
      ...(await describeAccount(deps, account)),
    });
  });

  // the "signed out" page's way back in: always asks to sign in
  router.get('/account/sign-in', (ctx) => door.start(ctx, 'login'));

  linkRoutes(router, deps, { door, signedIn, formSignedIn });

  // ---------------------------------------------------------------- withdrawing an app's access

  router.post('/account/apps/withdraw', formBody, async (ctx) => {
    const { session, form, actor } = await formSignedIn(ctx);
    const clientId = form.client;
    if (typeof clientId !== 'string' || !clientId) throw new PageError(400, 'That did not work', 'Choose an app on your account page.', '/account');
    const withdrawn = await withActor(actor, () => withdrawConsents(db, { accountId: session.accountId, clientId }));
    logger.info({ accountId: session.accountId, clientId, withdrawn: withdrawn.length }, 'consent withdrawn on the account page');
    redirectTo(ctx, withdrawn.length ? '/account?withdrawn=1' : '/account');
  });

  // ---------------------------------------------------------------- signing out everywhere

  router.post('/account/sign-out-everywhere', formBody, async (ctx) => {
    const { session } = await formSignedIn(ctx);
    const ended = await withActor({ type: 'account', id: session.accountId, address: ctx.ip }, () => signOutEverywhere(db, session.accountId));
    logger.info({ accountId: session.accountId, ended }, 'signed out everywhere');
    door.clearCsrf(ctx);
    renderSignedOut(ctx, `You are signed out on every device and browser (${ended === 1 ? '1 session' : `${ended} sessions`} ended). Apps you allowed keep their access until you withdraw it.`);
  });

  return router;
}
