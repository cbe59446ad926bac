import type Router from '@koa/router';
import type { Context } from 'koa';
import { withActor } from '../services/audit.js';
import { AccountDisabledError } from '../services/accounts.js';
import { IdentityOfAnotherAccountError, linkIdentity, type AccountOverview } from '../services/account-page.js';
import { UpstreamError, type Upstream } from '../federation/index.js';
import { redirectTo } from '../web/pages.js';
import { formBody } from '../web/form-body.js';
import { readJsonCookie } from '../web/cookies.js';
import { PageError } from '../web/page-error.js';
import type { BrowserSession, FirstPartySignIn } from '../web/first-party-sign-in.js';
import { PENDING_COOKIE, startUpstream, type PendingUpstream } from '../interactions/upstream-login.js';
import type { AccountPageDeps } from './routes.js';

/** A link started here: the pending upstream round trip of upstream-login.ts, bound to the account instead of an interaction. */
type PendingLink = Omit<PendingUpstream, 'uid' | 'purpose'> & { purpose: 'link'; accountId: string };

const LINK_ERROR_TEXT: Record<UpstreamError['kind'], (name: string) => string> = {
  denied: (name) => `You cancelled linking ${name}. Nothing was changed.`,
  oauth: (name) => `${name} refused. Nothing was changed; please try again.`,
  network: (name) => `${name} could not be reached. Nothing was changed; please try again in a moment.`,
  unexpected: (name) => `Linking ${name} did not work. Nothing was changed; please try again.`,
};

interface SignedIn {
  door: FirstPartySignIn;
  signedIn(ctx: Context): Promise<{ session: BrowserSession; account: AccountOverview } | undefined>;
  formSignedIn(ctx: Context): Promise<{ session: BrowserSession }>;
}

/**
 * Linking another upstream to the signed-in account: a POST starts the
 * upstream round trip (the same pending cookie as sign-in, with `purpose:
 * link`), and its callback, for the same person still signed in, links it.
 */
export function linkRoutes(router: Router, deps: AccountPageDeps, { door, signedIn, formSignedIn }: SignedIn): void {
  const { db, upstreams, issuer, logger } = deps;
  const linkExpired = () => door.expired();

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
    redirectTo(ctx, `/account?${linked ? 'linked' : 'already'}=${encodeURIComponent(upstream.id)}`);
  });
}
