import * as client from 'openid-client';
import { isLoopbackHttp } from '../common/loopback.js';
import { configureTransport, toUpstreamError, upstreamFetch, UpstreamError, type Reauthentication, type Upstream, type UpstreamChecks, type UpstreamProfile } from './upstream.js';

/**
 * Any OpenID Connect provider (Google is one): discovery from the issuer, state,
 * nonce and PKCE, and full ID-token validation by openid-client.
 *
 * OpenID Connect Core (5.4) lets a provider return the profile claims only at its
 * UserInfo endpoint when it issues an access token (oidc-provider does so by default).
 * When the ID token lacks a claim the account is built on (see `wantedClaims`), the
 * UserInfo endpoint fills in what is missing, after openid-client has checked that its
 * `sub` is the ID token's (Core 5.3.2). The ID token wins wherever it has a claim.
 */

export interface OidcOptions {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** seconds */
  timeout?: number;
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : null);

type Claims = Record<string, unknown>;

/**
 * The claims whose absence from the ID token is worth a UserInfo request: the email
 * (accounts link by it) and the name (shown to people), each only when its scope was
 * asked for. `picture` and `preferred_username` are filled in when UserInfo is asked
 * anyway, but do not cause a request on their own: Google's ID tokens never carry
 * `preferred_username`, and a round trip per sign-in for it would be a failure point
 * for nothing.
 */
function wantedClaims(scopes: string[]): string[] {
  return [...(scopes.includes('email') ? ['email'] : []), ...(scopes.includes('profile') ? ['name'] : [])];
}

/**
 * The ID token's claims with what UserInfo adds. `email_verified` travels with the
 * email of the same answer: an ID-token email is never vouched for by UserInfo's
 * `email_verified`, nor the other way round.
 */
function mergeClaims(idToken: Claims, userinfo: Claims | undefined): Claims {
  if (!userinfo) return { ...idToken };
  const merged: Claims = { ...idToken };
  for (const [name, value] of Object.entries(userinfo)) {
    if (merged[name] === undefined || merged[name] === null || merged[name] === '') merged[name] = value;
  }
  const emailFrom = str(idToken.email) ? idToken : str(userinfo.email) ? userinfo : undefined;
  delete merged.email;
  delete merged.email_verified;
  if (emailFrom) {
    merged.email = emailFrom.email;
    if (emailFrom.email_verified !== undefined) merged.email_verified = emailFrom.email_verified;
  }
  return merged;
}

export function openIdConnect(options: OidcOptions): Upstream {
  let discovered: Promise<client.Configuration> | undefined;

  /** Discovered on first use and kept; a failed discovery is retried next time. */
  function configuration(): Promise<client.Configuration> {
    discovered ??= client
      .discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
        execute: isLoopbackHttp(options.issuer) ? [client.allowInsecureRequests] : [],
        timeout: options.timeout ?? 10,
        [client.customFetch]: upstreamFetch(options.name),
      })
      .then((config) => {
        configureTransport(config, options.name, options.issuer, options.timeout ?? 10);
        return config;
      })
      .catch((err) => {
        discovered = undefined;
        throw err;
      });
    return discovered;
  }

  /** The UserInfo answer, refused unless it is about the ID token's `sub`; failures name UserInfo in the log. */
  async function userInfo(config: client.Configuration, accessToken: string, sub: string) {
    try {
      return await client.fetchUserInfo(config, accessToken, sub);
    } catch (err) {
      // the one attribute fetchUserInfo compares (OIDC Core 5.3.2)
      if (err instanceof client.ClientError && err.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
        throw new UpstreamError('unexpected', `${options.name}: UserInfo answered for another subject than the ID token's`, { cause: err });
      }
      throw toUpstreamError(err, `${options.name} UserInfo`);
    }
  }

  return {
    id: options.id,
    name: options.name,
    reportsAuthTime: true,
    async authorizationUrl(checks: UpstreamChecks, redirectUri: string, reauth?: Reauthentication) {
      try {
        return client.buildAuthorizationUrl(await configuration(), {
          // the app's demand for a fresh authentication, passed on; the ID token's auth_time is checked against it
          ...(reauth?.login ? { prompt: 'login' } : {}),
          ...(reauth?.maxAge !== undefined ? { max_age: String(reauth.maxAge) } : {}),
          redirect_uri: redirectUri,
          scope: options.scopes.join(' '),
          state: checks.state,
          nonce: checks.nonce,
          code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
          code_challenge_method: 'S256',
        });
      } catch (err) {
        throw toUpstreamError(err, options.name);
      }
    },
    async finish(callbackUrl: URL, checks: UpstreamChecks): Promise<UpstreamProfile> {
      try {
        const config = await configuration();
        const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          pkceCodeVerifier: checks.codeVerifier,
          idTokenExpected: true,
        });
        const idToken = tokens.claims()!;
        const missing = wantedClaims(options.scopes).some((name) => str(idToken[name]) === null);
        const userinfo = missing && config.serverMetadata().userinfo_endpoint && tokens.access_token
          ? await userInfo(config, tokens.access_token, idToken.sub)
          : undefined;
        // only claims: never the tokens
        const claims = mergeClaims({ ...idToken }, userinfo && { ...userinfo });
        return {
          provider: options.id,
          subject: idToken.sub,
          email: str(claims.email),
          emailVerified: claims.email_verified === true,
          name: str(claims.name),
          username: str(claims.preferred_username),
          picture: str(claims.picture),
          raw: claims,
          authentication: {
            authTime: typeof idToken.auth_time === 'number' ? idToken.auth_time : undefined,
            amr: Array.isArray(idToken.amr) ? idToken.amr.filter((m): m is string => typeof m === 'string') : undefined,
          },
        };
      } catch (err) {
        throw toUpstreamError(err, options.name);
      }
    },
  };
}
