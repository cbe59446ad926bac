import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

/** A signed cookie holding a JSON object; undefined when missing, unsigned, or not an object. */
export function readJsonCookie<T>(ctx: Context, name: string): Partial<T> | undefined {
  const raw = ctx.cookies.get(name, { signed: true });
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Partial<T>) : undefined;
  } catch {
    return undefined;
  }
}

/** Two strings compared as bytes in constant time; anything that is not a string never matches. */
export function sameString(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}
