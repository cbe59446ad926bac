import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { rememberConsent, rememberedGrantId } from '../services/consents.js';
import { OIDC_SCOPES } from '../common/protocol.js';
import { FIRST_PARTY } from './client-metadata.js';

/**
 * `loadExistingGrant`: the grant an authorization request may reuse, in order:
 * the one this interaction just created, the one in the session, the consent
 * the account gave this client before, or, for first-party clients, a new grant
 * of everything requested (no consent screen), remembered like any consent so
 * admins can list and revoke it.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#loadexistinggrant
 */
export function loadExistingGrant(db: Db, hot: HotStatements) {
  return async (ctx: KoaContextWithOIDC) => {
    const { client, session, provider } = ctx.oidc;
    if (!client || !session?.accountId) return undefined;
    const accountId = session.accountId;
    let grant;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) grant = await provider.Grant.find(grantId);
    if (!grant) {
      const remembered = await rememberedGrantId(hot, accountId, client.clientId);
      const found = remembered ? await provider.Grant.find(remembered) : undefined;
      if (found && found.accountId === accountId && found.clientId === client.clientId) grant = found;
    }
    if ((client as unknown as Record<string, unknown>)[FIRST_PARTY] !== true) return grant;

    grant ??= new provider.Grant({ clientId: client.clientId, accountId });
    const requested = String(ctx.oidc.params?.scope ?? '').split(' ').filter(Boolean);
    const oidcScopes = requested.filter((s) => (OIDC_SCOPES as readonly string[]).includes(s));
    if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
    const resources = ctx.oidc.params?.resource;
    for (const resource of Array.isArray(resources) ? resources : resources ? [resources] : []) {
      grant.addResourceScope(String(resource), requested.join(' '));
    }
    const savedId = await grant.save();
    await rememberConsent(db, accountId, client.clientId, savedId);
    return grant;
  };
}
