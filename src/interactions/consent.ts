import type Router from '@koa/router';
import { rememberConsent } from '../services/consents.js';
import { withActor } from '../services/audit.js';
import { finishStep, formBody, formInteraction } from './current-interaction.js';
import type { InteractionDeps } from './routes.js';

/** POST confirm (grant what the consent prompt lists, and remember it) and POST abort. */
export function consentRoutes(router: Router, { provider, db }: InteractionDeps): void {
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

  router.post('/interaction/:uid/abort', formBody, async (ctx) => {
    await formInteraction(provider, ctx, ctx.params.uid, 'login', 'consent');
    await finishStep(provider, ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, true);
  });
}
