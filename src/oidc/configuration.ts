import { hkdfSync } from 'node:crypto';
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import type { Config } from '../config.js';
import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { AUTH_METHODS, CLIENT_PROFILES, PKCE_POLICIES, CLIENT_SIGNING_ALGS, FAPI2_SIGNING_ALGS, OIDC_SCOPES, SIGNING_ALGS } from '../common/protocol.js';
import { adapterFactory } from './adapter.js';
import { FIRST_PARTY, isFapi2, PKCE, pkceRequired, PROFILE, RESOURCES, SCOPES } from './client-metadata.js';
import { ACR_VALUES, promptsLogin } from '../services/authentication.js';
import { registrationFeatures } from './registration.js';
import { introspectionPolicy } from './introspection.js';
import { resourceServerInfo } from './resource-indicators.js';
import { accountClaims } from './find-account.js';
import { loadExistingGrant } from './existing-grant.js';
import { privateNetworkFetch } from './outgoing-fetch.js';
import { exchangedTokenClaims } from './token-exchange.js';
import { customizeJwt } from './structured-tokens.js';
import { revokeGrantPolicy } from './code-reuse.js';
import type { ProviderViews } from '../interactions/provider-views.js';

/**
 * The server's secret that keys what is stored of device user codes (short
 * enough to guess offline from a dump): from KEY_ENCRYPTION_KEY, which
 * production requires, else from the cookie keys (random per process when
 * unset, which only a development server does).
 */
export function userCodePepper(config: Pick<Config, 'keyEncryptionKey' | 'cookieKeys'>): Buffer {
  const secret = config.keyEncryptionKey ?? Buffer.from(config.cookieKeys.join('\n'));
  return Buffer.from(hkdfSync('sha256', secret, '', 'gatehouse device user codes', 32));
}

/** A sign-in session: 14 days, in seconds (oidc-provider's default, said explicitly). */
export const SESSION_TTL = 14 * 24 * 60 * 60;

export interface ConfigurationDeps {
  config: Config;
  db: Db;
  cache: AdminDataCache;
  keys: JWK[];
  /** the pages oidc-provider renders itself */
  views: ProviderViews;
  /** the prepared statements of the request hot path (storage/hot-statements.ts) */
  hot: HotStatements;
  now?: () => number;
}

/**
 * Apps registering themselves may not make themselves first-party or grant
 * themselves APIs; admins set these through the clients service.
 */
const extraClientMetadata: Configuration['extraClientMetadata'] = {
  properties: [FIRST_PARTY, RESOURCES, SCOPES, PROFILE, PKCE],
  validator(ctx, key, value) {
    const route = (ctx as KoaContextWithOIDC | undefined)?.oidc?.route;
    const selfRegistered = route === 'registration' || route === 'client_update';
    if (key === PROFILE || key === PKCE) {
      const [values, fallback] = key === PROFILE ? [CLIENT_PROFILES, 'default'] : [PKCE_POLICIES, 'required'];
      if (value === undefined) return;
      if (!(values as readonly unknown[]).includes(value)) throw new errors.InvalidClientMetadata(`${key} is malformed`);
      if (selfRegistered && value !== fallback) throw new errors.InvalidClientMetadata(`${key} is set by an administrator`);
      return;
    }
    const granted = key === FIRST_PARTY ? value === true : Array.isArray(value) && value.length > 0;
    if (selfRegistered && granted) throw new errors.InvalidClientMetadata(`${key} is set by an administrator`);
    if (value === undefined) return;
    const ok = key === FIRST_PARTY ? typeof value === 'boolean' : Array.isArray(value) && value.every((v) => typeof v === 'string');
    if (!ok) throw new errors.InvalidClientMetadata(`${key} is malformed`);
  },
};

/**
 * The device flow signs the person in on another device, in whatever session
 * that browser has: it cannot honour prompt=login or max_age, so it refuses
 * them rather than answer as if it had (oidc-provider drops them). What
 * it returns is oidc-provider's default device info.
 */
function deviceInfoWithoutReauthentication(ctx: KoaContextWithOIDC) {
  // the parsed body: oidc-provider leaves both out of the device flow's parameters
  const body = ((ctx.oidc as { body?: Record<string, unknown> }).body ?? {});
  // a repeated parameter arrives as an array: every value counts (promptsLogin)
  if (body.max_age !== undefined || promptsLogin(body.prompt)) {
    throw new errors.InvalidRequest('prompt=login and max_age are not supported in the device flow');
  }
  return { ip: ctx.ip, ua: ctx.get('user-agent') };
}

/** The longest a client assertion may still be valid when it arrives, in seconds (RFC 7523 sets none; openid-client uses 60). */
export const MAX_ASSERTION_LIFETIME = 300;
/** clock skew allowed on top, in seconds */
const ASSERTION_CLOCK_TOLERANCE = 60;

/**
 * Client assertions (private_key_jwt): valid for at most MAX_ASSERTION_LIFETIME
 * from now, for every client. For FAPI 2.0 clients (§5.3.2.1, §5.4):
 * the audience is the issuer alone, and only PS256, ES256 or EdDSA. Setting
 * this hook replaces oidc-provider's default, whose one check is that audience
 * rule.
 */
const assertJwtClientAuthClaimsAndHeader: Configuration['assertJwtClientAuthClaimsAndHeader'] = async (ctx, claims, header, client) => {
  // a long-lived assertion is a long-lived credential (and a long-lived replay-detection row)
  // from now, and from when it says it was made: a year-old iat with a near exp is as long-lived
  const exp = Number(claims.exp);
  const lifetime = Math.max(exp - Math.floor(Date.now() / 1000), typeof claims.iat === 'number' ? exp - claims.iat : 0);
  if (lifetime > MAX_ASSERTION_LIFETIME + ASSERTION_CLOCK_TOLERANCE) {
    throw new errors.InvalidClientAuth(`client assertions may be valid for at most ${MAX_ASSERTION_LIFETIME} seconds (exp is too far ahead)`);
  }
  if (!isFapi2(client)) return;
  if (claims.aud !== ctx.oidc.issuer) throw new errors.InvalidClientAuth('audience (aud) must equal the issuer identifier url');
  if (!(FAPI2_SIGNING_ALGS as readonly string[]).includes(String(header.alg))) {
    throw new errors.InvalidClientAuth(`the FAPI 2.0 profile allows only ${FAPI2_SIGNING_ALGS.join(', ')} client assertions`);
  }
};

/**
 * oidc-provider configuration: which features are on, and where each hook
 * lives (one file each in this folder).
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md
 */
export function providerConfiguration({ config, db, hot, cache, keys, views, now }: ConfigurationDeps): Configuration {
  // OpenID Connect Core 3.1.2.1 and RP-Initiated Logout §2 want POST at /auth and
  // /session/end. A cross-site form POST carries the session cookie only when it
  // is SameSite=None, which browsers accept only with Secure: so on an https
  // issuer alone (README, "GET and POST").
  const postMethods = config.issuer.startsWith('https:');
  return {
    adapter: adapterFactory(db, hot, cache, now, userCodePepper(config)),
    jwks: { keys: keys as Configuration['jwks'] extends { keys: infer K } ? K : never },
    cookies: {
      keys: config.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: postMethods ? 'none' : 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    enableHttpPostMethods: postMethods,
    // OpenID Connect Core 3.1.2.1: redirect_uri is REQUIRED, even with one registered
    allowOmittingSingleRegisteredRedirectUri: false,
    clientAuthMethods: [...AUTH_METHODS],
    extraClientMetadata,
    assertJwtClientAuthClaimsAndHeader,
    features: {
      devInteractions: { enabled: false },
      ...registrationFeatures(config.registration, db, now),
      rpInitiatedLogout: { enabled: true, ...views.logout },
      backchannelLogout: { enabled: true },
      // RFC 8628; sign-in in between goes through the same interaction routes
      deviceFlow: { enabled: true, charset: 'base-20', mask: '****-****', deviceInfo: deviceInfoWithoutReauthentication, ...views.device },
      clientCredentials: { enabled: true },
      // OpenID Connect Core 5.5: individual claims, essential ones honoured (acr: services/authentication.ts)
      claimsParameter: { enabled: true },
      // userinfo_signed_response_alg: UserInfo as a JWT signed with the server's keys
      jwtUserinfo: { enabled: true },
      introspection: { enabled: true, allowedPolicy: introspectionPolicy(cache, hot) },
      revocation: { enabled: true },
      // FAPI 2.0 Security Profile for the clients an admin puts on it (client-metadata.ts)
      fapi: { enabled: true, profile: (_ctx, client) => (isFapi2(client) ? '2.0' : undefined) },
      resourceIndicators: {
        enabled: true,
        // No resource requested: an opaque token for Gatehouse itself.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: resourceServerInfo(cache),
      },
    },
    // RFC 9700 §2.1.1: PKCE for every authorization code flow, S256 only, unless an
    // admin made a confidential client PKCE-optional (client-metadata.ts, pkceRequired).
    pkce: { required: (_ctx, client) => pkceRequired(client) },
    // what an upstream sign-in can vouch for (services/authentication.ts)
    acrValues: [...ACR_VALUES],
    responseTypes: ['code'],
    // Only asymmetric algorithms: `client_secret` holds an argon2id hash, never
    // usable as an HMAC key.
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      clientAuthSigningAlgValues: [...CLIENT_SIGNING_ALGS],
      requestObjectSigningAlgValues: [...CLIENT_SIGNING_ALGS],
    },
    scopes: [...OIDC_SCOPES],
    claims: {
      // in every ID token: when and how the person authenticated (services/authentication.ts)
      openid: ['sub', 'auth_time', 'acr', 'amr'],
      profile: ['name', 'preferred_username', 'picture'],
      email: ['email', 'email_verified'],
    },
    findAccount: accountClaims(hot),
    // `act` in tokens made by RFC 8693 token exchange (token-exchange.ts)
    extraTokenClaims: exchangedTokenClaims as Configuration['extraTokenClaims'],
    // a person's JWT names its grant; a management token its client's credentials (structured-tokens.ts)
    formats: { customizers: { jwt: customizeJwt(cache, config.issuer) as NonNullable<NonNullable<Configuration['formats']>['customizers']>['jwt'] } },
    loadExistingGrant: loadExistingGrant(db, hot),
    // a reused code revokes the tokens of that code (code-reuse.ts)
    revokeGrantPolicy,
    // Refresh tokens rotate on every use; reuse of a rotated one revokes the grant
    // (see refresh-grace.ts). FAPI 2.0 §5.3.2.1 forbids rotation: those refresh
    // tokens are bound to the client's DPoP key instead (provider.ts).
    rotateRefreshToken: (ctx) => !isFapi2(ctx.oidc.client),
    ttl: {
      // seconds: FAPI 2.0 clients get half of oidc-provider's default minute
      AuthorizationCode: (_ctx, _code, client) => (isFapi2(client) ? 30 : 60),
      // Remembered consent lives as long as its grant: one year, in seconds.
      Grant: 365 * 24 * 60 * 60,
      Session: SESSION_TTL,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Outgoing requests refuse special-use addresses (SSRF) unless the operator
    // exempts back-channel logout to admin-registered clients.
    ...(config.allowPrivateNetworkRequests ? { fetch: privateNetworkFetch(db) } : {}),
    renderError: views.renderError,
  };
}
