import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
// a store of this instance's own, so two fakes can never see each other's artifacts
import { memoryAdapter } from '../../../src/dev/memory-adapter.js';

/**
 * A real OpenID Provider (oidc-provider) on 127.0.0.1, playing Google or any other
 * upstream IdP. Sign-in and consent complete without UI for whichever user is current.
 */
export type FakeOidcUser = { sub: string; email?: string; email_verified?: boolean; name?: string; picture?: string };

/**
 * deny: the user declines. failUserinfo: the UserInfo endpoint answers 500.
 * userinfoClaims: claims UserInfo answers with on top of (or instead of) the user's,
 * `sub` included (OIDC Core 5.3.2 says a client must refuse a `sub` other than the ID token's).
 * userinfoEndpoint: the userinfo_endpoint discovery advertises; null leaves it out.
 */
export type FakeOidcBehaviour = {
  deny?: boolean;
  failUserinfo?: boolean;
  userinfoClaims?: Record<string, unknown>;
  userinfoEndpoint?: string | null;
};

export type FakeOidc = {
  issuer: string;
  setUser(user: FakeOidcUser): void;
  setBehaviour(b: FakeOidcBehaviour): void;
  /** how many requests reached the UserInfo endpoint so far */
  userinfoRequests(): number;
  close(): Promise<void>;
};

export const defaultOidcUser: FakeOidcUser = {
  sub: '110169484474386276334',
  email: 'ada@example.com',
  email_verified: true,
  name: 'Ada Lovelace',
  picture: 'https://lh3.googleusercontent.com/a/ada',
};

export async function startFakeOidc(options: {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  name?: string;
  /**
   * Where the scope-granted claims (email, profile) are: in the ID token as well as at
   * UserInfo, as Google does (the default), or only at UserInfo, as oidc-provider does by
   * default when it issues an access token (OIDC Core 5.4): the ID token has `sub` and
   * the protocol claims, nothing about the person.
   */
  claimsAt?: 'id_token' | 'userinfo';
}): Promise<FakeOidc> {
  let user = defaultOidcUser;
  let behaviour: FakeOidcBehaviour = {};
  let userinfoRequests = 0;

  // The port is part of the issuer, so it must be known before the Provider exists.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  // Browsers share 127.0.0.1 cookies across ports, so the default `_session` would
  // overwrite Gatehouse's own (also oidc-provider). Unique names keep them apart.
  const prefix = `fake${randomBytes(4).toString('hex')}`;

  const configuration: Configuration = {
    clients: [{
      client_id: options.clientId,
      client_secret: options.clientSecret,
      client_name: options.name,
      redirect_uris: options.redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      // oidc-provider 9 accepts client_secret_post as well for a client registered with basic.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'picture', 'given_name', 'family_name', 'locale'],
    },
    // Google puts the scope-granted claims in the ID token too, not only at userinfo;
    // oidc-provider's own default (true) keeps them for userinfo.
    conformIdTokenClaims: options.claimsAt === 'userinfo',
    pkce: { required: () => true },
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: `${prefix}-rs256` }] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: { session: `${prefix}_session`, interaction: `${prefix}_interaction`, resume: `${prefix}_resume` },
    },
    features: { devInteractions: { enabled: false } },
    // oidc-provider's own memory adapter is one store per process, shared by every instance.
    adapter: memoryAdapter(),
    // Explicit lifetimes (Google's one hour for tokens) keep oidc-provider from nagging.
    ttl: { AccessToken: 3600, IdToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Only the current test user exists.
    findAccount: (_ctx, sub) => sub === user.sub ? { accountId: sub, claims: () => ({ ...user }) } : undefined,
  };
  const provider = new Provider(issuer, configuration);
  // A browser may still hold a session of an earlier test user. oidc-provider would
  // skip login and crash in its consent check (findAccount no longer knows that user),
  // or, on a fresh login, answer with a JavaScript-driven logout form. Forgetting such a
  // session makes the next sign-in the current user's, as if the browser had signed out.
  provider.use(async (ctx, next) => {
    const sessionId = ctx.cookies.get(`${prefix}_session`);
    const session = sessionId ? await provider.Session.find(sessionId) : undefined;
    if (session?.accountId && session.accountId !== user.sub) await session.destroy();
    await next();
  });
  // UserInfo and discovery as the behaviour says.
  provider.use(async (ctx, next) => {
    const userinfo = ctx.path === '/me' && ctx.method !== 'OPTIONS';
    if (userinfo) {
      userinfoRequests++;
      if (behaviour.failUserinfo) {
        ctx.status = 500;
        ctx.type = 'text/plain';
        ctx.body = 'Internal Server Error';
        return;
      }
    }
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (userinfo && ctx.status === 200 && body && typeof body === 'object' && behaviour.userinfoClaims) {
      ctx.body = { ...body, ...behaviour.userinfoClaims };
    }
    if (ctx.path === '/.well-known/openid-configuration' && body && typeof body === 'object' && behaviour.userinfoEndpoint !== undefined) {
      const { userinfo_endpoint: _, ...rest } = body;
      ctx.body = behaviour.userinfoEndpoint === null ? rest : { ...rest, userinfo_endpoint: behaviour.userinfoEndpoint };
    }
  });
  const oidc = provider.callback();

  async function interact(req: IncomingMessage, res: ServerResponse) {
    const details = await provider.interactionDetails(req, res);
    if (behaviour.deny) {
      const result = { error: 'access_denied', error_description: 'The user denied the request' };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    if (details.prompt.name === 'login') {
      return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    }
    // Consent: grant exactly what is missing, as oidc-provider's example routes do.
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
      missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId
      ? (await provider.Grant.find(details.grantId))!
      : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
  }

  server.on('request', (req, res) => {
    if (req.method === 'GET' && /^\/interaction\/[^/?]+(\?|$)/.test(req.url ?? '')) {
      interact(req, res).catch((err: Error) => {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`interaction failed: ${err.message}`);
      });
    } else {
      oidc(req, res);
    }
  });

  return {
    issuer,
    setUser: (u) => { user = u; },
    setBehaviour: (b) => { behaviour = { ...b }; },
    userinfoRequests: () => userinfoRequests,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

