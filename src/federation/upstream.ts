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

/** What Gatehouse keeps of an upstream account. */
export interface UpstreamProfile {
  provider: string;
  /** the upstream's stable id for the person */
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  username: string | null;
  picture: string | null;
  /** the raw profile, kept for the operator */
  raw: Record<string, unknown>;
}

export interface Upstream {
  id: string;
  name: string;
  /** where to send the browser */
  authorizationUrl(checks: UpstreamChecks, redirectUri: string): Promise<URL>;
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

/** Maps openid-client and fetch failures onto the four kinds. */
/**
 * An OAuth error body anywhere in the cause chain: GitHub answers token errors
 * with HTTP 200, which openid-client reports as an invalid response whose
 * cause's cause holds the body.
 */
function oauthBody(err: unknown): { error: string; error_description?: string } | undefined {
  for (let e = err as { cause?: unknown; body?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const body = e.body as { error?: unknown; error_description?: unknown } | undefined;
    if (body && typeof body.error === 'string') {
      return { error: body.error, error_description: typeof body.error_description === 'string' ? body.error_description : undefined };
    }
  }
  return undefined;
}

export function toUpstreamError(err: unknown, provider: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const body = oauthBody(err);
  if (body) err = Object.assign(new Error(body.error), body);
  const e = err as { name?: string; code?: string; error?: string; error_description?: string; message?: string; cause?: unknown };
  if (e.error === 'access_denied') return new UpstreamError('denied', `${provider}: access denied`, { cause: err });
  if (e.error) return new UpstreamError('oauth', `${provider}: ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`, { cause: err });
  const cause = e.cause as { code?: string } | undefined;
  if (e.name === 'TypeError' && /fetch failed/.test(e.message ?? '')) {
    return new UpstreamError('network', `${provider} could not be reached${cause?.code ? ` (${cause.code})` : ''}`, { cause: err });
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new UpstreamError('network', `${provider} did not answer in time`, { cause: err });
  return new UpstreamError('unexpected', `${provider}: ${e.message ?? 'unexpected response'}`, { cause: err });
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** http is accepted only for upstreams on this machine (config.ts enforces the same). */
export function isLoopbackHttp(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'http:' && LOOPBACK.has(u.hostname);
}
