import type { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { PageError } from './page-error.js';

/**
 * The form parser, loaded by the first form POST rather than at start: with
 * co-body, qs and a second mime database it costs a start about 60 ms, and a
 * server that only issues tokens to services never parses a form.
 */
let parseForm: Promise<ReturnType<typeof bodyParser>> | undefined;
const formParser = () =>
  (parseForm ??= import('@koa/bodyparser').then((m) => m.bodyParser({ enableTypes: ['form'], formLimit: '64kb' })));

/**
 * Forms of every page are small urlencoded bodies. A body that cannot be read
 * (too large, a Content-Encoding it does not have, bad bytes) is the client's
 * mistake: a 400 page, whatever the parser threw.
 */
export const formBody: Middleware = async (ctx, next) => {
  const parse = await formParser();
  try {
    await parse(ctx, async () => {});
  } catch {
    throw new PageError(400, 'That did not work', 'The form could not be read. Please go back, reload the page and try again.');
  }
  await next();
};

/** The parsed form of this request (formBody ran), as fields of strings or lists of strings. */
export function formOf(ctx: { request: unknown }): Record<string, unknown> {
  const body = (ctx.request as { body?: unknown }).body;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}
