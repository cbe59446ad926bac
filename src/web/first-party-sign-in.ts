import { createHash } from 'node:crypto';
import * as oauth from 'openid-client';
import type { Context } from 'koa';
import type { default as Provider } from 'oidc-provider';
import { readJsonCookie, sameString } from './cookies.js';
import { checkCsrf, clearCsrf, csrfToken, type CsrfScope } from './csrf.js';
import { formOf } from './form-body.js';
import { formExpired, PageError } from './page-error.js';
import { redirectTo } from './pages.js';

/**
 * How Gatehouse's own pages for people (the account page, the console) sign
 * in: like any app. With no session, the browser goes through an
 * authorization request of the door's built-in first-party client (code +
 * PKCE, state in a short signed cookie), and the door reads oidc-provider's
 * session once it is back; the code is checked and destroyed, never
 * exchanged. Forms carry a synchronizer token bound to the session and its
 * account (csrf.ts), so signing out or in as someone else ends them.
 */

export interface FirstPartyDoor {
  /** the built-in client's id */
  clientId: string;
  /** the door's path, e.g. /account: its cookies are scoped to it */
  path: string;
  /** the redirect URI registered for the client (<issuer><path>) */
  redirectUri: string;
  issuer: string;
}

/** oidc-provider's session of this browser: its uid and the account signed in, if any. */
export interface BrowserSession {
  uid: string;
  accountId: string;
}

/** The door's authorization request in flight: its state and PKCE verifier. */
interface PendingSignIn {
  state: string;
  codeVerifier: string;
}

// 10 minutes, in ms
const SIGN_IN_MAX_AGE = 10 * 60 * 1000;

const cookieName = (door: FirstPartyDoor, what: string) => `gatehouse.${door.path.replace(/^\//, '').replace(/\W/g, '-')}-${what}`;
const csrfScope = (door: FirstPartyDoor, s: BrowserSession): CsrfScope => ({ cookie: cookieName(door, 'csrf'), path: door.path, binding: `${s.uid}/${s.accountId}` });

const signInExpired = (door: FirstPartyDoor) =>
  new PageError(400, 'This link has expired', 'It was already used, or it took too long. Go back and try again.', door.path);

export function firstPartySignIn(provider: Provider, door: FirstPartyDoor) {
  const signInCookie = cookieName(door, 'signin');

  /** The browser's session with oidc-provider, when someone is signed in. */
  async function session(ctx: Context): Promise<BrowserSession | undefined> {
    const s = await provider.Session.get(ctx);
    return s.accountId ? { uid: s.uid, accountId: s.accountId } : undefined;
  }

  /** Sends the browser through an authorization request of the door's client. */
  async function start(ctx: Context, prompt?: 'login'): Promise<void> {
    const pending: PendingSignIn = { state: oauth.randomState(), codeVerifier: oauth.randomPKCECodeVerifier() };
    const url = new URL(`${door.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: door.clientId,
      response_type: 'code',
      redirect_uri: door.redirectUri,
      scope: 'openid',
      state: pending.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      ...(prompt ? { prompt } : {}),
    }).toString();
    ctx.cookies.set(signInCookie, JSON.stringify(pending), {
      path: door.path, httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, maxAge: SIGN_IN_MAX_AGE, overwrite: true,
    });
    redirectTo(ctx, url.href, 302);
  }

  /** Whether this request is oidc-provider sending the browser back to the door. */
  const isReturn = (ctx: Context) => ctx.query.state !== undefined || ctx.query.code !== undefined || ctx.query.error !== undefined;

  /**
   * oidc-provider sent the browser back: the state must be this browser's, and
   * the code (never exchanged: the session is what signs the page in) must be
   * the door's, for this browser's PKCE challenge; it is destroyed.
   */
  async function finish(ctx: Context): Promise<void> {
    const pending = readJsonCookie<PendingSignIn>(ctx, signInCookie);
    // single use
    ctx.cookies.set(signInCookie, null, { path: door.path, signed: true, overwrite: true });
    const { code, state, error } = ctx.query;
    if (!pending?.state || !pending.codeVerifier || !sameString(state, pending.state)) throw signInExpired(door);
    if (error !== undefined || typeof code !== 'string') {
      const denied = error === 'access_denied';
      throw new PageError(400, denied ? 'Sign-in cancelled' : 'Sign-in failed', denied ? 'You did not sign in.' : 'Signing in did not work. Please try again.', door.path);
    }
    const issued = await provider.AuthorizationCode.find(code);
    if (issued) {
      const challenge = createHash('sha256').update(pending.codeVerifier).digest('base64url');
      if (issued.clientId !== door.clientId || issued.codeChallenge !== challenge) throw signInExpired(door);
      await issued.destroy();
    }
    redirectTo(ctx, door.path);
  }

  return {
    session,
    start,
    /** The page for a sign-in or link that was already used, or took too long. */
    expired: () => signInExpired(door),
    isReturn,
    finish,
    /** The token for this session's forms on the door. */
    csrf: (ctx: Context, s: BrowserSession) => csrfToken(ctx, csrfScope(door, s)),
    /** Throws the expired-form page unless the form's token is this session's. */
    checkForm(ctx: Context, s: BrowserSession | undefined): void {
      if (!s || !checkCsrf(ctx, csrfScope(door, s), formOf(ctx).csrf)) throw formExpired(door.path);
    },
    clearCsrf: (ctx: Context) => clearCsrf(ctx, { cookie: cookieName(door, 'csrf'), path: door.path }),
  };
}

export type FirstPartySignIn = ReturnType<typeof firstPartySignIn>;
