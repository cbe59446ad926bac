import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

/**
 * Synchronizer tokens for interaction forms: a random token in a signed,
 * HttpOnly, SameSite cookie scoped to the interaction, echoed in each form.
 */

const COOKIE = 'gatehouse.csrf';

function cookieOptions(ctx: Context, uid: string) {
  return { path: `/interaction/${uid}`, httpOnly: true, sameSite: 'strict' as const, signed: true, secure: ctx.secure, overwrite: true };
}

/** The token to put in this interaction's forms (reused while the cookie lives). */
export function csrfToken(ctx: Context, uid: string): string {
  const existing = ctx.cookies.get(COOKIE, { signed: true });
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  ctx.cookies.set(COOKIE, token, cookieOptions(ctx, uid));
  return token;
}

/** True when the form's token matches the cookie's. */
export function checkCsrf(ctx: Context, submitted: unknown): boolean {
  const expected = ctx.cookies.get(COOKIE, { signed: true });
  if (!expected || typeof submitted !== 'string') return false;
  // compared as bytes: a string of the right length may still differ in byte length
  const [a, b] = [Buffer.from(submitted), Buffer.from(expected)];
  return a.length === b.length && timingSafeEqual(a, b);
}
