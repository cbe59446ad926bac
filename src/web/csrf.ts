import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { sameString } from './cookies.js';

/**
 * Synchronizer tokens for every form Gatehouse renders: a random token in a
 * signed, HttpOnly, SameSite=Strict cookie, echoed in each form. The cookie
 * also names what it is bound to (an interaction; a session and its account),
 * so a cookie and token taken from one binding are refused on another.
 */

export interface CsrfScope {
  /** the cookie's name */
  cookie: string;
  /** the cookie's path: the pages whose forms carry the token */
  path: string;
  /** what the token is bound to, e.g. an interaction uid or `${sessionUid}/${accountId}` */
  binding: string;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The token of the cookie, or undefined when the cookie is missing or bound to something else. */
function tokenFor(ctx: Context, scope: CsrfScope): string | undefined {
  const value = ctx.cookies.get(scope.cookie, { signed: true });
  const dot = value?.lastIndexOf('.') ?? -1;
  if (!value || dot < 0 || value.slice(0, dot) !== scope.binding) return undefined;
  const token = value.slice(dot + 1);
  return TOKEN.test(token) ? token : undefined;
}

/** The token to put in this scope's forms (reused while the cookie lives). */
export function csrfToken(ctx: Context, scope: CsrfScope): string {
  const existing = tokenFor(ctx, scope);
  if (existing) return existing;
  const token = randomBytes(32).toString('base64url');
  ctx.cookies.set(scope.cookie, `${scope.binding}.${token}`, {
    path: scope.path, httpOnly: true, sameSite: 'strict', signed: true, secure: ctx.secure, overwrite: true,
  });
  return token;
}

/** True when the form's token matches this scope's cookie. */
export function checkCsrf(ctx: Context, scope: CsrfScope, submitted: unknown): boolean {
  const expected = tokenFor(ctx, scope);
  return !!expected && sameString(submitted, expected);
}

/** Forgets the scope's token (after signing out). */
export function clearCsrf(ctx: Context, scope: Pick<CsrfScope, 'cookie' | 'path'>): void {
  ctx.cookies.set(scope.cookie, null, { path: scope.path, signed: true, overwrite: true });
}
