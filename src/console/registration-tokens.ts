import type { Context } from 'koa';
import { ServiceError, formatProblem } from '../services/errors.js';
import { createRegistrationToken, isSingleUse, listRegistrationTokens, revokeRegistrationToken } from '../services/registration-tokens.js';
import { consolePage, doneRedirect, field, queryParam, when, type ConsoleArea, type ConsoleDeps } from './context.js';

/**
 * Registration tokens (initial access tokens), /console/registration-tokens:
 * the live ones by prefix, a new one made as /admin/v1/registration-tokens
 * makes it (same service, same rules) and shown once on the result page, and
 * revocation by prefix behind a confirmation page.
 */

const REVOKED = 'Token revoked: it no longer registers apps.';
const BASE = '/console/registration-tokens';
const DEFAULT_FORM = { expiresIn: '86400', singleUse: false };

async function listPage(ctx: Context, deps: ConsoleDeps, form = DEFAULT_FORM, problems?: string[], status = 200): Promise<void> {
  const tokens = await listRegistrationTokens(deps.db, new Date());
  consolePage(ctx, 'registration-tokens', 'registration-tokens', {
    notice: queryParam(ctx, 'done') === REVOKED ? REVOKED : undefined,
    problems, form,
    enabled: deps.registrationMode === 'initial-access-token',
    registrationMode: deps.registrationMode,
    tokens: tokens.map((t) => ({ prefix: t.prefix, expires: when(t.expiresAt), singleUse: isSingleUse(t.policies), used: t.used })),
  }, status);
}

export const registrationTokensArea: ConsoleArea = (router, deps) => {
  router.get(BASE, (ctx) => listPage(ctx, deps));
  router.post(BASE, async (ctx) => {
    const form = { expiresIn: field(ctx, 'expiresIn'), singleUse: field(ctx, 'singleUse') === 'true' };
    // a whole number goes to the service as one; anything else as it was typed, for the service to refuse
    const expiresIn = /^\d{1,9}$/.test(form.expiresIn) ? Number(form.expiresIn) : form.expiresIn;
    try {
      const made = await createRegistrationToken(deps.db, deps.registrationMode, { expiresIn, singleUse: form.singleUse }, (options) => new deps.provider.InitialAccessToken(options).save());
      // the token is shown on this page only: no redirect, no URL, no log carries it
      consolePage(ctx, 'registration-tokens', 'registration-tokens-created', { token: made.token, prefix: made.prefix, expires: when(made.expiresAt), singleUse: made.singleUse }, 201);
    } catch (err) {
      if (!(err instanceof ServiceError && err.code === 'invalid')) throw err;
      await listPage(ctx, deps, form, err.problems.map((p) => formatProblem(p)), 400);
    }
  });
  router.get(`${BASE}/:prefix/revoke`, (ctx) => consolePage(ctx, 'registration-tokens', 'registration-tokens-revoke', { prefix: ctx.params.prefix }));
  router.post(`${BASE}/:prefix/revoke`, async (ctx) => {
    await revokeRegistrationToken(deps.db, ctx.params.prefix);
    doneRedirect(ctx, BASE, REVOKED);
  });
};
