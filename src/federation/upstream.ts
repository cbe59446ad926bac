import * as client from 'openid-client';
import type { UpstreamIdentity } from '../services/accounts.js';
import type { AuthenticationRequest, UpstreamAuthentication } from '../services/authentication.js';
import { isLoopbackHttp } from '../common/loopback.js';

/**
 * The one interface every upstream identity provider implements (GitHub, Google,
 * any OpenID Connect provider). The caller keeps the state, nonce and PKCE
 * verifier (in a cookie bound to the interaction) and hands them back.
 */

export interface UpstreamChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/**
 * What an upstream says about the person (the accounts service's input) and,
 * if it says so, when and how they authenticated there (services/authentication.ts).
 */
export type UpstreamProfile = UpstreamIdentity & { authentication?: UpstreamAuthentication };

/** A fresh authentication the app asked for (prompt=login, max_age), to ask of the upstream as far as it can. */
export type Reauthentication = Pick<AuthenticationRequest, 'login' | 'maxAge'>;

export interface Upstream {
  id: string;
  name: string;
  /** whether its sign-ins say when the person authenticated (an ID token's auth_time) */
  reportsAuthTime: boolean;
  /** where to send the browser; `reauth` when the app asked for a fresh authentication */
  authorizationUrl(checks: UpstreamChecks, redirectUri: string, reauth?: Reauthentication): Promise<URL>;
  /** exchanges the code in `callbackUrl` and reads the profile; throws UpstreamError */
  finish(callbackUrl: URL, checks: UpstreamChecks): Promise<UpstreamProfile>;
}

export type UpstreamErrorKind =
  /** the person declined at the upstream (error=access_denied) */
  | 'denied'
  /** the upstream answered with an OAuth error */
  | 'oauth'
  /** the upstream could not be reached */
  | 'network'
  /** the upstream answered something we cannot use */
  | 'unexpected';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/**
 * openid-client's fetch for an upstream. A request that got no answer (refused,
 * reset, DNS, timed out) becomes UpstreamError('network') here, the one place
 * that knows what fetch throws; everything after an answer is openid-client's.
 */
export function upstreamFetch(provider: string): client.CustomFetch {
  return async (url, options) => {
    try {
      return await fetch(url, options as RequestInit);
    } catch (err) {
      if (options.signal?.aborted) throw new UpstreamError('network', `${provider} did not answer in time`, { cause: err });
      // fetch puts the socket error (ECONNREFUSED, ENOTFOUND, …) in its cause: named for the log
      const code = ((err as Error).cause as { code?: unknown } | undefined)?.code;
      throw new UpstreamError('network', `${provider} could not be reached${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
    }
  };
}

/** The first error of class `type` in a cause chain (openid-client wraps what it catches). */
function inCauses<T>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

/**
 * An OAuth error body in a cause chain: GitHub answers token errors with HTTP
 * 200, which openid-client reports as an invalid response whose cause carries the body.
 */
function oauthErrorBody(err: unknown): { error: string; error_description?: string } | undefined {
  for (let e = err as { cause?: unknown; body?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const body = e.body as { error?: unknown; error_description?: unknown } | undefined;
    if (body && typeof body.error === 'string') {
      return { error: body.error, error_description: typeof body.error_description === 'string' ? body.error_description : undefined };
    }
  }
  return undefined;
}

/** Maps what an upstream call threw onto the four kinds, by class. */
export function toUpstreamError(err: unknown, provider: string): UpstreamError {
  const known = inCauses(err, UpstreamError);
  if (known) return known;
  const answer = inCauses(err, client.AuthorizationResponseError) ?? inCauses(err, client.ResponseBodyError) ?? oauthErrorBody(err);
  if (answer?.error === 'access_denied') return new UpstreamError('denied', `${provider}: access denied`, { cause: err });
  if (answer) {
    return new UpstreamError('oauth', `${provider}: ${answer.error}${answer.error_description ? ` (${answer.error_description})` : ''}`, { cause: err });
  }
  return new UpstreamError('unexpected', `${provider}: ${err instanceof Error ? err.message : 'unexpected response'}`, { cause: err });
}

/** An openid-client Configuration's transport: plain http only on this machine, and failures typed. */
export function configureTransport(config: client.Configuration, provider: string, baseUrl: string, timeout: number): void {
  if (isLoopbackHttp(baseUrl)) client.allowInsecureRequests(config);
  config.timeout = timeout;
  config[client.customFetch] = upstreamFetch(provider);
}
