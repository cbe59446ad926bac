/**
 * The two oidc-provider internals Gatehouse reaches (the modules have no
 * types): the per-instance state, to wrap the refresh_token grant handler
 * (oidc/refresh-grace.ts), and the DPoP proof checks the refresh grace repeats
 * for a second request. A test of each behaviour fails if an upgrade moves them.
 * @see https://github.com/panva/node-oidc-provider/blob/main/lib/helpers/weak_cache.js
 * @see https://github.com/panva/node-oidc-provider/blob/main/lib/helpers/validate_dpop.js
 */
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  export default function instance(provider: object): {
    grantTypeHandlers: Map<string, (ctx: import('oidc-provider').KoaContextWithOIDC) => Promise<void>>;
  };
}

declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  export interface DpopResult {
    thumbprint: string;
    jti: string;
    iat: number;
  }
  export default function validateDpop(provider: object, ctx: object, accessToken?: string): Promise<DpopResult | undefined>;
  export function checkDpopReplay(provider: object, ctx: object, dPoP: DpopResult | undefined, clientId: string, ErrorClass?: unknown): Promise<void>;
}
