import Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { providerConfiguration, type ConfigurationDeps } from './configuration.js';
import type { SecretVerifier } from './client-secrets.js';
import { releaseOnFailure } from './registration.js';

/**
 * Builds the oidc-provider instance. Client secrets are argon2id hashes, so the
 * comparison oidc-provider does for client_secret_basic/post is replaced with a
 * verification through the success cache.
 */
export function createProvider(deps: ConfigurationDeps & { verifier: SecretVerifier; logger: Logger }): Provider {
  const provider = new Provider(deps.config.issuer, providerConfiguration(deps));
  provider.proxy = deps.config.trustProxy;

  const { verifier } = deps;
  // Awaited by oidc-provider's client authentication (lib/shared/client_auth.js).
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string) {
    if (!this.clientSecret || typeof actual !== 'string') return Promise.resolve(false);
    return verifier.verify(this.clientId, this.clientSecret, actual);
  } as never;

  releaseOnFailure(provider, deps.db);

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
