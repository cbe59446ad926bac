import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

/**
 * Synchronizer tokens for interaction forms: a random token in a signed,
 * HttpOnly, SameSite cookie scoped to the interaction, echoed in each form.
 * The cookie also names its interaction, so a cookie and token taken from one
 * interaction are refused on another.
 */

const COOKIE = 'gatehouse.csrf';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

function cookieOptions(ctx: Context, uid: string) {
  return { path: `/interaction/${uid}`, httpOnly: true, sameSite: 'strict' as const, signed: true, secure: ctx.secure, overwrite: true };
}

/** The token of this interaction's cookie, or undefined when the cookie is missing or belongs to another interaction. */
function tokenFor(ctx: Context, uid: string): string | undefined {
  const value = ctx.cookies.get(COOKIE, { signed: true });
  const dot = value?.lastIndexOf('.') ?? -1;
  if (!value || dot < 0 || value.slice(0, dot) !== uid) return undefined;
  const token = value.slice(dot + 1);
  return TOKEN.test(token) ? token : undefined;
}

/** The token to put in this interaction's forms (reused while the cookie lives). */
export function csrfToken(ctx: Context, uid: string): string {
  const existing = tokenFor(ctx, uid);
  if (existing) return existing;
  const token = randomBytes(32).toString('base64url');
  ctx.cookies.set(COOKIE, `${uid}.${token}`, cookieOptions(ctx, uid));
  return token;
}

/** True when the form's token matches this interaction's cookie. */
export function checkCsrf(ctx: Context, uid: string, submitted: unknown): boolean {
  const expected = tokenFor(ctx, uid);
  if (!expected || typeof submitted !== 'string') return false;
  // compared as bytes: a string of the right length may still differ in byte length
  const [a, b] = [Buffer.from(submitted), Buffer.from(expected)];
  return a.length === b.length && timingSafeEqual(a, b);
}
