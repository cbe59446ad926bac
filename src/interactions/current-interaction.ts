import type { bodyParser } from '@koa/bodyparser';
import { errors, type default as Provider } from 'oidc-provider';
import type { Context, Middleware } from 'koa';
import { checkCsrf } from './csrf.js';
import { PageError } from './page-error.js';

/**
 * The form parser, loaded by the first form POST rather than at start: with
 * co-body, qs and a second mime database it costs a start about 60 ms, and a
 * server that only issues tokens to services never parses a form.
 */
let parseForm: Promise<ReturnType<typeof bodyParser>> | undefined;
const formParser = () =>
  (parseForm ??= import('@koa/bodyparser').then((m) => m.bodyParser({ enableTypes: ['form'], formLimit: '16kb' })));

/**
 * Interaction forms are small urlencoded bodies. A body that cannot be read
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

/** The interaction behind this request, which must be the one in the path; throws SessionNotFound otherwise. */
export async function currentInteraction(provider: Provider, ctx: Context, uid: string) {
  const interaction = await provider.interactionDetails(ctx.req, ctx.res);
  if (interaction.uid !== uid) throw new errors.SessionNotFound('interaction session and path differ');
  return interaction;
}

/** For a form POST: the CSRF token first, then the interaction, then the prompt it must be at. */
export async function formInteraction(provider: Provider, ctx: Context, uid: string, ...prompts: string[]) {
  const form = (ctx.request as unknown as { body?: Record<string, unknown> }).body ?? {};
  if (!checkCsrf(ctx, uid, form.csrf)) throw new PageError(403, 'This form has expired', 'Please go back, reload the page and try again.', `/interaction/${uid}`);
  const interaction = await currentInteraction(provider, ctx, uid);
  if (!prompts.includes(interaction.prompt.name)) {
    throw new PageError(400, 'That did not work', 'This step of signing in is already done.', `/interaction/${interaction.uid}`);
  }
  return interaction;
}

/** Ends this step. A new login replaces earlier results; consent keeps the login it follows. */
export async function finishStep(provider: Provider, ctx: Context, result: Parameters<Provider['interactionResult']>[2], mergeWithLastSubmission: boolean) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 303;
  ctx.redirect(returnTo);
}
