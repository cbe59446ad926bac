import type Router from '@koa/router';
import { rememberConsent } from '../services/consents.js';
import { withActor } from '../services/audit.js';
import { finishStep, formInteraction } from './current-interaction.js';
import { formBody } from '../web/form-body.js';
import { redirectTo } from '../web/pages.js';
import type { InteractionDeps } from './routes.js';

/** POST confirm (grant what the consent prompt lists, and remember it), POST abort, and POST not-you. */
export function consentRoutes(router: Router, { provider, db, logger }: InteractionDeps): void {
  router.post('/interaction/:uid/confirm', formBody, async (ctx) => {
    const interaction = await formInteraction(provider, ctx, ctx.params.uid, 'consent');
    const accountId = interaction.session!.accountId;
    const clientId = String(interaction.params.client_id);
    const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = (interaction.grantId && (await provider.Grant.find(interaction.grantId))) || new provider.Grant({ accountId, clientId });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    const granted = { scope: grant.getOIDCScope(), apis: Object.keys(grant.resources ?? {}) };
    await withActor({ type: 'account', id: accountId, address: ctx.ip }, () => rememberConsent(db, accountId, clientId, grantId, granted));
    await finishStep(provider, ctx, { consent: { grantId } }, true);
  });

  /**
   * "Not you?" on the consent page: signs this browser out (its oidc-provider
   * session is destroyed) and sends the same authorization request on, which
   * now finds nobody signed in and asks for a login: a new interaction, the
   * login page, then consent for whoever signs in. The interaction forgets the
   * session it began with, as oidc-provider itself does when a login names
   * another account (lib/actions/authorization/resume.js); without that, the
   * resume would refuse the new session. Works for pushed requests too, since
   * nothing is re-sent.
   */
  router.post('/interaction/:uid/not-you', formBody, async (ctx) => {
    const interaction = await formInteraction(provider, ctx, ctx.params.uid, 'consent');
    const session = await provider.Session.get(ctx);
    if (session.accountId && session.uid === interaction.session?.uid) {
      await session.destroy();
      logger.info({ accountId: session.accountId }, 'signed out from the consent page (not you?)');
    }
    delete interaction.session;
    interaction.result = {};
    await interaction.persist();
    redirectTo(ctx, interaction.returnTo);
  });

  router.post('/interaction/:uid/abort', formBody, async (ctx) => {
    await formInteraction(provider, ctx, ctx.params.uid, 'login', 'consent');
    await finishStep(provider, ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, true);
  });
}
