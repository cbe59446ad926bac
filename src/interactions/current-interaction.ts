import { errors, type default as Provider } from 'oidc-provider';
import type { Context } from 'koa';
import { checkCsrf, csrfToken, type CsrfScope } from '../web/csrf.js';
import { formOf } from '../web/form-body.js';
import { formExpired, PageError } from '../web/page-error.js';
import { redirectTo } from '../web/pages.js';

/** An interaction's forms: the token's cookie is scoped to the interaction's path and names it. */
const csrfScope = (uid: string): CsrfScope => ({ cookie: 'gatehouse.csrf', path: `/interaction/${uid}`, binding: uid });

/** The token to put in this interaction's forms. */
export const interactionCsrf = (ctx: Context, uid: string) => csrfToken(ctx, csrfScope(uid));

/** The interaction behind this request, which must be the one in the path; throws SessionNotFound otherwise. */
export async function currentInteraction(provider: Provider, ctx: Context, uid: string) {
  const interaction = await provider.interactionDetails(ctx.req, ctx.res);
  if (interaction.uid !== uid) throw new errors.SessionNotFound('interaction session and path differ');
  return interaction;
}

/** For a form POST: the CSRF token first, then the interaction, then the prompt it must be at. */
export async function formInteraction(provider: Provider, ctx: Context, uid: string, ...prompts: string[]) {
  if (!checkCsrf(ctx, csrfScope(uid), formOf(ctx).csrf)) throw formExpired(`/interaction/${uid}`);
  const interaction = await currentInteraction(provider, ctx, uid);
  if (!prompts.includes(interaction.prompt.name)) {
    throw new PageError(400, 'That did not work', 'This step of signing in is already done.', `/interaction/${interaction.uid}`);
  }
  return interaction;
}

/** Ends this step. A new login replaces earlier results; consent keeps the login it follows. */
export async function finishStep(provider: Provider, ctx: Context, result: Parameters<Provider['interactionResult']>[2], mergeWithLastSubmission: boolean) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
  redirectTo(ctx, returnTo);
}
