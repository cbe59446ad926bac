import * as client from 'openid-client';
import { z } from 'zod';
import { configureTransport, toUpstreamError, UpstreamError, type Reauthentication, type Upstream, type UpstreamChecks, type UpstreamProfile } from './upstream.js';

/**
 * GitHub (OAuth 2.0, not OpenID Connect): authorize with state and PKCE, exchange
 * the code, then read /user and /user/emails for the verified primary email.
 * @see https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
 */

const userSchema = z.object({
  id: z.number(),
  login: z.string(),
  name: z.string().nullable().optional(),
  avatar_url: z.string().nullable().optional(),
});
const emailsSchema = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

export interface GitHubOptions {
  clientId: string;
  clientSecret: string;
  /** web base, https://github.com or a GitHub Enterprise host */
  baseUrl: string;
  /** REST base, https://api.github.com or https://HOST/api/v3 */
  apiUrl: string;
  /** seconds */
  timeout?: number;
}

export function gitHub(options: GitHubOptions): Upstream {
  const config = new client.Configuration(
    {
      issuer: options.baseUrl,
      authorization_endpoint: `${options.baseUrl}/login/oauth/authorize`,
      token_endpoint: `${options.baseUrl}/login/oauth/access_token`,
    },
    options.clientId,
    options.clientSecret,
  );
  configureTransport(config, 'GitHub', options.baseUrl, options.timeout ?? 10);

  async function api(accessToken: string, path: string): Promise<unknown> {
    const headers = new Headers({
      accept: 'application/vnd.github+json',
      // GitHub rejects requests without a User-Agent
      'user-agent': 'gatehouse',
      'x-github-api-version': '2022-11-28',
    });
    const res = await client.fetchProtectedResource(config, accessToken, new URL(`${options.apiUrl}${path}`), 'GET', undefined, headers);
    if (!res.ok) throw new UpstreamError('unexpected', `GitHub ${path} answered ${res.status}`);
    return res.json();
  }

  return {
    id: 'github',
    name: 'GitHub',
    reportsAuthTime: false,
    async authorizationUrl(checks: UpstreamChecks, redirectUri: string, reauth?: Reauthentication) {
      return client.buildAuthorizationUrl(config, {
        // GitHub has no prompt=login or max_age, and reports no auth_time: its account
        // picker at least makes the person act at GitHub (services/authentication.ts)
        ...(reauth && (reauth.login || reauth.maxAge !== undefined) ? { prompt: 'select_account' } : {}),
        redirect_uri: redirectUri,
        scope: 'read:user user:email',
        state: checks.state,
        code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
        allow_signup: 'true',
      });
    },
    async finish(callbackUrl: URL, checks: UpstreamChecks): Promise<UpstreamProfile> {
      try {
        const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
          expectedState: checks.state,
          pkceCodeVerifier: checks.codeVerifier,
        });
        const user = userSchema.safeParse(await api(tokens.access_token, '/user'));
        if (!user.success) throw new UpstreamError('unexpected', 'GitHub /user returned an unexpected body');
        const emails = emailsSchema.safeParse(await api(tokens.access_token, '/user/emails'));
        if (!emails.success) throw new UpstreamError('unexpected', 'GitHub /user/emails returned an unexpected body');
        const primary = emails.data.find((e) => e.primary && e.verified) ?? null;
        return {
          provider: 'github',
          subject: String(user.data.id),
          email: primary?.email ?? null,
          emailVerified: primary !== null,
          name: user.data.name ?? null,
          username: user.data.login,
          picture: user.data.avatar_url ?? null,
          raw: user.data,
        };
      } catch (err) {
        throw toUpstreamError(err, 'GitHub');
      }
    },
  };
}
