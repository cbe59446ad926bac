import Provider from 'oidc-provider';
import { isFapi2 } from './client-metadata.js';

/**
 * What the FAPI 2.0 Security Profile needs beyond oidc-provider's `features.fapi`,
 * the client metadata of client-metadata.ts and the client-assertion check of
 * configuration.ts: refresh tokens of FAPI clients do not rotate (§5.3.2.1), so
 * they are bound to the DPoP key of the access token issued with them, as
 * oidc-provider does for public clients; a refresh needs a proof with that key.
 * (Request objects are off, so there is no request-object algorithm to limit.)
 */
export function installFapi2Rules(provider: Provider): void {
  const refreshToken = provider.RefreshToken.prototype as unknown as { save(): Promise<string>; jkt?: string; clientId?: string };
  const save = refreshToken.save;
  refreshToken.save = async function saveBound(this: typeof refreshToken) {
    const ctx = Provider.ctx;
    if (!this.jkt && ctx?.oidc && isFapi2(ctx.oidc.client)) {
      const jkt = ctx.oidc.entities.AccessToken?.jkt;
      if (jkt) this.jkt = jkt;
    }
    return save.call(this);
  };
}
