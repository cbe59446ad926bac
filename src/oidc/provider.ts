import Provider, { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { providerConfiguration, type ConfigurationDeps } from './configuration.js';
import { VerifierBusyError, type SecretVerifier } from './client-secrets.js';
import type { Catalog } from '../storage/catalog.js';
import { releaseOnFailure } from './registration.js';

/**
 * Keeps oidc-provider's Client objects per client id while the catalog is
 * unchanged. oidc-provider's own Client.find serializes and hashes the adapter's
 * metadata on every call to find its cached object; this skips that on the
 * token hot path. Any admin change (or registration) drops the catalog, and
 * with it these.
 */
function cacheClients(provider: Provider, catalog: Catalog): void {
  const find = provider.Client.find.bind(provider.Client);
  const cache = new Map<string, { generation: number; client: Awaited<ReturnType<typeof find>> }>();
  provider.Client.find = async function cachedFind(id: string) {
    const generation = catalog.generation;
    const hit = cache.get(id);
    if (hit && hit.generation === generation) return hit.client;
    const client = await find(id);
    if (client && generation === catalog.generation) {
      if (cache.size >= 10_000) cache.clear();
      cache.set(id, { generation, client });
    }
    return client;
  } as typeof provider.Client.find;
}

/**
 * Builds the oidc-provider instance. Client secrets are argon2id hashes, so the
 * comparison oidc-provider does for client_secret_basic/post is replaced with a
 * verification through the success cache.
 */
export function createProvider(deps: ConfigurationDeps & { verifier: SecretVerifier; logger: Logger }): Provider {
  const provider = new Provider(deps.config.issuer, providerConfiguration(deps));
  provider.proxy = deps.config.trustProxy;
  // Behind one trusted proxy: the client address is the last X-Forwarded-For
  // entry the proxy appended, not whatever the client put first.
  if (deps.config.trustProxy) provider.maxIpsCount = 1;

  const { verifier } = deps;
  // Awaited by oidc-provider's client authentication (lib/shared/client_auth.js).
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string) {
    if (!this.clientSecret || typeof actual !== 'string') return false;
    try {
      return await verifier.verify(this.clientId, this.clientSecret, actual, Provider.ctx?.ip);
    } catch (err) {
      if (!(err instanceof VerifierBusyError)) throw err;
      const busy = new errors.TemporarilyUnavailable('too many requests are being authenticated; try again shortly');
      Object.assign(busy, { status: 503, statusCode: 503 });
      throw busy;
    }
  } as never;

  cacheClients(provider, deps.catalog);
  releaseOnFailure(provider, deps.db);

  // Koa's own handler would print stack traces; log name and message only.
  (provider as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
    deps.logger.error({ err }, 'unhandled error');
  });

  provider.on('server_error', (ctx, err) => {
    deps.logger.error({ err, path: ctx.path }, 'server error');
  });
  for (const event of ['grant.error', 'introspection.error', 'revocation.error', 'backchannel.error', 'end_session.error', 'authorization.error']) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (ctx: { path: string }, err: unknown) => {
      const e = err as { error?: string; error_description?: string; message?: string; cause?: { code?: string } };
      deps.logger.info(
        { event, path: ctx?.path, error: e.error ?? e.message, description: e.error_description, cause: e.cause?.code },
        'oauth error',
      );
    });
  }
  return provider;
}
