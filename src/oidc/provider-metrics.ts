import { errors, type default as Provider, type KoaContextWithOIDC } from 'oidc-provider';
import type { Metrics } from '../metrics.js';
import { isGraceRepeat } from './refresh-grace.js';

/**
 * Counts what oidc-provider reports through its events: tokens issued (by
 * grant type and API), token errors (by OAuth error code), and refresh-token
 * reuse (oidc-provider revokes the grant at the token endpoint when a rotated
 * refresh token comes back).
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/events.md
 */
export function observeProvider(provider: Provider, metrics: Metrics): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    // a repeat within the refresh grace period issued nothing
    if (isGraceRepeat(ctx)) return void metrics.refreshGrace.inc();
    const params = ctx.oidc.params as { grant_type?: unknown; resource?: unknown } | undefined;
    const api = ctx.oidc.resourceServers ? Object.keys(ctx.oidc.resourceServers)[0] : undefined;
    metrics.tokens.inc({ grant_type: String(params?.grant_type ?? 'unknown'), api: api ?? 'none' });
  });
  provider.on('grant.error', (_ctx: KoaContextWithOIDC, err: unknown) => {
    metrics.tokenErrors.inc({ error: err instanceof errors.OIDCProviderError ? err.error : 'server_error' });
  });
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.route === 'token' && (ctx.oidc.params as { grant_type?: unknown } | undefined)?.grant_type === 'refresh_token') metrics.refreshReuse.inc();
  });
}
