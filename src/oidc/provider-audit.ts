import type { default as Provider, KoaContextWithOIDC } from 'oidc-provider';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import { recordAuditQuietly, withActor } from '../services/audit.js';

/**
 * The audit trail's side of oidc-provider: every request runs as an anonymous
 * actor with its address (a door that knows better, such as a signed-in
 * person's consent, says so), and the security events oidc-provider reports
 * through its events go into the trail.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/events.md
 */
export function anonymousActor(): Middleware {
  return (ctx, next) => withActor({ type: 'anonymous', address: ctx.ip }, next);
}

export function auditProvider(provider: Provider, db: Db, logger: Logger): void {
  const failed = (err: unknown) => logger.warn({ err }, 'could not record an audit event');
  // oidc-provider revokes the grant at the token endpoint when a rotated refresh token comes back
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    if (ctx.oidc.route !== 'token' || (ctx.oidc.params as { grant_type?: unknown } | undefined)?.grant_type !== 'refresh_token') return;
    const clientId = ctx.oidc.client?.clientId;
    void recordAuditQuietly(db, {
      action: 'refresh_token.reuse_detected',
      outcome: 'failure',
      actor: clientId ? { type: 'client', id: clientId, address: ctx.ip } : { type: 'anonymous', address: ctx.ip },
      target: { type: 'grant', id: grantId },
      details: { clientId, accountId: ctx.oidc.entities.Account?.accountId, grantRevoked: true },
    }, failed);
  });
}
