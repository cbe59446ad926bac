import { errors, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { JWK } from 'jose';
import type { Config } from '../config.js';
import type { Db } from '../storage/database.js';
import type { Catalog } from '../storage/catalog.js';
import { adapterFactory } from './adapter.js';
import { FIRST_PARTY, RESOURCES, SCOPES } from './client-metadata.js';
import { render } from '../interactions/views.js';
import { findAccount } from '../storage/accounts.js';
import { findConsent, rememberConsent } from '../storage/consents.js';
import { registrationFeatures } from './registration.js';

export interface ConfigurationDeps {
  config: Config;
  db: Db;
  catalog: Catalog;
  keys: JWK[];
  now?: () => number;
}

/** The OpenID Connect scopes Gatehouse offers; API scopes come from registered APIs. */
const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email'] as const;

/** What pages call a client. */
const displayName = (client: { clientName?: string; clientId: string } | undefined) => client?.clientName ?? client?.clientId ?? null;

/** Plain words for the error page, by OAuth error code. */
const ERROR_TITLES: Record<string, string> = {
  invalid_request: 'The request was not valid',
  invalid_client: 'Unknown application',
  invalid_redirect_uri: 'Unknown return address',
  access_denied: 'Access denied',
  session_not_found: 'Your sign-in session has expired',
};

/**
 * oidc-provider configuration.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md
 */
export function providerConfiguration({ config, db, catalog, keys, now }: ConfigurationDeps): Configuration {
  return {
    adapter: adapterFactory(db, catalog, now),
    jwks: { keys: keys as Configuration['jwks'] extends { keys: infer K } ? K : never },
    cookies: {
      keys: config.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    extraClientMetadata: {
      properties: [FIRST_PARTY, RESOURCES, SCOPES],
      validator(ctx, key, value) {
        // Apps registering themselves may not make themselves first-party or grant themselves APIs.
        const route = (ctx as KoaContextWithOIDC | undefined)?.oidc?.route;
        const selfRegistered = route === 'registration' || route === 'client_update';
        const granted = key === FIRST_PARTY ? value === true : Array.isArray(value) && value.length > 0;
        if (selfRegistered && granted) throw new errors.InvalidClientMetadata(`${key} is set by an administrator`);
        if (value === undefined) return;
        const ok =
          key === FIRST_PARTY
            ? typeof value === 'boolean'
            : Array.isArray(value) && value.every((v) => typeof v === 'string');
        if (!ok) throw new errors.InvalidClientMetadata(`${key} is malformed`);
      },
    },
    features: {
      devInteractions: { enabled: false },
      ...registrationFeatures(config.registration),
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // `form` is oidc-provider's own markup (action and CSRF field); the view
          // places it and submits it with the person's choice.
          render(ctx, 'logout', { form, clientName: displayName(ctx.oidc.client), formId: 'op.logoutForm' });
        },
        async postLogoutSuccessSource(ctx) {
          render(ctx, 'logged-out', { clientName: displayName(ctx.oidc.client) });
        },
      },
      backchannelLogout: { enabled: true },
      // RFC 8628; sign-in in between goes through the same interaction routes
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        async userCodeInputSource(ctx, form, _out, err) {
          const e = err as { userCode?: string; name?: string } | undefined;
          const error = !e
            ? undefined
            : e.userCode || e.name === 'NoCodeError'
              ? 'That code is not right, or it has expired. Try again.'
              : e.name === 'AbortedError'
                ? 'Signing in on the device was cancelled.'
                : 'Something went wrong. Try again.';
          // `form` is oidc-provider's markup: the code field and its CSRF field
          render(ctx, 'device-code', { form: form.replace('name="user_code"', 'name="user_code" aria-label="Code from your device"'), error }, e ? 400 : 200);
        },
        async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
          render(ctx, 'device-confirm', { form, clientName: displayName(client), userCode });
        },
        async successSource(ctx) {
          render(ctx, 'device-success', { clientName: displayName(ctx.oidc.client) });
        },
      },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §4: a client learns about its own tokens; an API's introspector
        // client about tokens issued for that API; nobody about anyone else's.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId === client.clientId) return true;
          const t = token as unknown as { aud?: string | string[]; resourceServer?: { audience?: string } };
          const audiences = [t.aud ?? t.resourceServer?.audience ?? []].flat().filter((a): a is string => typeof a === 'string');
          for (const audience of audiences) {
            if ((await catalog.resource(audience))?.introspectors.includes(client.clientId)) return true;
          }
          return false;
        },
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No resource requested: an opaque token for Gatehouse itself.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: KoaContextWithOIDC, indicator: string, client) =>
          resourceServerInfo(catalog, indicator, client as unknown as Record<string, unknown>),
      },
    },
    // RFC 9700 §2.1.1: PKCE for every authorization code flow, S256 only.
    pkce: { required: () => true },
    responseTypes: ['code'],
    // Only asymmetric algorithms: `client_secret` holds an argon2id hash, never
    // usable as an HMAC key, and Gatehouse's own keys are ES256 and RS256.
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256', 'RS256'],
      userinfoSigningAlgValues: ['ES256', 'RS256'],
      introspectionSigningAlgValues: ['ES256', 'RS256'],
      authorizationSigningAlgValues: ['ES256', 'RS256'],
      clientAuthSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      requestObjectSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
    },
    scopes: [...OIDC_SCOPES],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'picture'],
      email: ['email', 'email_verified'],
    },
    async findAccount(_ctx, sub) {
      const account = await findAccount(db, sub);
      if (!account) return undefined;
      return {
        accountId: account.id,
        async claims() {
          // oidc-provider keeps only the claims the granted scopes allow.
          return {
            sub: account.id,
            ...(account.email ? { email: account.email, email_verified: account.emailVerified } : {}),
            ...(account.name ? { name: account.name } : {}),
            ...(account.username ? { preferred_username: account.username } : {}),
            ...(account.picture ? { picture: account.picture } : {}),
          };
        },
      };
    },
    loadExistingGrant: (ctx) => loadExistingGrant(ctx, db),
    // Refresh tokens rotate on every use; reuse of a rotated one revokes the grant.
    rotateRefreshToken: () => true,
    ttl: {
      // Remembered consent lives as long as its grant: one year, in seconds.
      Grant: 365 * 24 * 60 * 60,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // oidc-provider's outgoing requests refuse special-use addresses (SSRF). An
    // operator may exempt back-channel logout to clients an admin registered;
    // anything an app registered itself stays protected.
    ...(config.allowPrivateNetworkRequests
      ? {
          fetch: async (url: string | URL | Request, init?: RequestInit) => {
            const target = url instanceof Request ? url.url : String(url);
            const trusted = await db.client.findFirst({ where: { backchannelLogoutUri: target, dynamic: false }, select: { clientId: true } });
            if (!trusted) return globalThis.fetch(url, init);
            const { dispatcher, ...options } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
            return globalThis.fetch(url, options);
          },
        }
      : {}),
    async renderError(ctx, out) {
      const code = typeof out.error === 'string' ? out.error : 'server_error';
      render(ctx, 'error', {
        title: ERROR_TITLES[code] ?? 'Something went wrong',
        // error_description is oidc-provider's own, written for the client developer; never a stack.
        message: out.error_description ?? 'Please go back to the application and try again.',
      }, ctx.status);
    },
  };
}

/**
 * The grant an authorization request may reuse, in order: the one this
 * interaction just created, the one in the session, the consent the account
 * gave this client before, or, for first-party clients, a new grant of
 * everything requested (no consent screen).
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#loadexistinggrant
 */
async function loadExistingGrant(ctx: KoaContextWithOIDC, db: Db) {
  const { client, session, provider } = ctx.oidc;
  if (!client || !session?.accountId) return undefined;
  const accountId = session.accountId;
  let grant;
  const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  if (grantId) grant = await provider.Grant.find(grantId);
  if (!grant) {
    const remembered = await findConsent(db, accountId, client.clientId);
    const found = remembered ? await provider.Grant.find(remembered) : undefined;
    if (found && found.accountId === accountId && found.clientId === client.clientId) grant = found;
  }
  if ((client as unknown as Record<string, unknown>)[FIRST_PARTY] !== true) return grant;

  // First-party: no consent screen. The grant covers whatever is asked now, and
  // is remembered like any consent, so admins can list and revoke it.
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
}

/**
 * RFC 8707: only registered APIs that the client is allowed to use; a client
 * listed with scopes gets at most those scopes of the API.
 */
export async function resourceServerInfo(
  catalog: Catalog,
  indicator: string,
  client: Record<string, unknown>,
): Promise<ResourceServer> {
  const api = await catalog.resource(indicator);
  const allowedApis = (client[RESOURCES] as string[] | undefined) ?? [];
  // The same error whether the API is unknown or not allowed: nothing to probe.
  if (!api || !allowedApis.includes(indicator)) throw new errors.InvalidTarget();
  const clientScopes = (client[SCOPES] as string[] | undefined) ?? [];
  const scopes = clientScopes.length ? api.scopes.filter((s) => clientScopes.includes(s)) : api.scopes;
  return {
    scope: scopes.join(' '),
    audience: api.identifier,
    // seconds
    accessTokenTTL: api.accessTokenTtl,
    accessTokenFormat: api.tokenFormat,
    ...(api.tokenFormat === 'jwt' ? { jwt: { sign: { alg: api.signingAlg } } } : {}),
  };
}
