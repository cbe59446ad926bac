import * as client from 'openid-client';
import { isLoopbackHttp } from '../common/loopback.js';
import { configureTransport, toUpstreamError, upstreamFetch, type Upstream, type UpstreamChecks, type UpstreamProfile } from './upstream.js';

/**
 * Any OpenID Connect provider (Google is one): discovery from the issuer, state,
 * nonce and PKCE, and full ID-token validation by openid-client.
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

  return {
    id: options.id,
    name: options.name,
    async authorizationUrl(checks: UpstreamChecks, redirectUri: string) {
      try {
        return client.buildAuthorizationUrl(await configuration(), {
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
        const tokens = await client.authorizationCodeGrant(await configuration(), callbackUrl, {
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          pkceCodeVerifier: checks.codeVerifier,
          idTokenExpected: true,
        });
        const claims = tokens.claims()!;
        return {
          provider: options.id,
          subject: claims.sub,
          email: str(claims.email),
          emailVerified: claims.email_verified === true,
          name: str(claims.name),
          username: str(claims.preferred_username),
          picture: str(claims.picture),
          raw: { ...claims },
        };
      } catch (err) {
        throw toUpstreamError(err, options.name);
      }
    },
  };
}
