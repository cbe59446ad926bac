import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';

/**
 * Every request gets an id: on the response (`X-Request-Id`), in the request
 * log line and on every error page, so a person can quote it and an operator
 * can find the line. An incoming `X-Request-Id` is kept only behind a trusted
 * proxy (TRUST_PROXY) and only when well formed; otherwise the id is made here.
 */

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What an id from a proxy may look like: no spaces, quotes or control characters, so it is safe in a log line and a page. */
const WELL_FORMED = /^[A-Za-z0-9._:-]{8,128}$/;

const ids = new WeakMap<object, string>();

/** The id of this request (made on first ask if the middleware did not run, e.g. in a unit test). */
export function requestIdOf(ctx: Pick<Context, 'req'>): string {
  let id = ids.get(ctx.req);
  if (!id) {
    id = randomUUID();
    ids.set(ctx.req, id);
  }
  return id;
}

export function requestIds(trustProxy: boolean): Middleware {
  return async (ctx, next) => {
    const incoming = trustProxy ? ctx.get(REQUEST_ID_HEADER) : '';
    const id = WELL_FORMED.test(incoming) ? incoming : randomUUID();
    ids.set(ctx.req, id);
    ctx.set(REQUEST_ID_HEADER, id);
    await next();
  };
}
