/**
 * What a sign-in through an upstream proves, written once: the `auth_time`,
 * `acr` and `amr` Gatehouse puts in its ID tokens, and whether the sign-in
 * meets what the app asked for (prompt=login, max_age, essential acr values).
 *
 * Gatehouse never checks a credential itself; an upstream does. An OpenID
 * Connect upstream says when the person authenticated there (its ID token's
 * `auth_time`); GitHub says nothing of the kind. So:
 * - `urn:gatehouse:acr:upstream-auth-time`: the upstream reported when the
 *   person authenticated, and `auth_time` is that time.
 * - `0` (OpenID Connect Core §2: no assurance about the authentication itself,
 *   e.g. a long-lived session): the upstream vouched for the person at
 *   `auth_time` (when the sign-in came back), and said nothing about when a
 *   credential was last checked. GitHub sign-ins are always this.
 * @see docs/CONFORMANCE.md ("Re-authentication")
 */

export const ACR_UPSTREAM_AUTH_TIME = 'urn:gatehouse:acr:upstream-auth-time';
export const ACR_NO_ASSURANCE = '0';
export const ACR_VALUES = [ACR_UPSTREAM_AUTH_TIME, ACR_NO_ASSURANCE] as const;

/**
 * Seconds an upstream's clock and the round trip may add: an `auth_time` this
 * much older than the request (prompt=login) or than max_age still counts.
 */
export const AUTH_TIME_TOLERANCE = 5;

/** What the app asked of this sign-in. */
export interface AuthenticationRequest {
  /** prompt=login: the person must authenticate again */
  login: boolean;
  /** max_age, seconds */
  maxAge?: number;
  /** the essential acr of the claims parameter (essentialAcr below), if any */
  essentialAcr?: EssentialAcr;
  /** when Gatehouse sent the person to the upstream, seconds since the epoch */
  startedAt: number;
}

/** What the upstream reported about the authentication. */
export interface UpstreamAuthentication {
  /** seconds since the epoch */
  authTime?: number;
  amr?: string[];
}

/** An upstream as far as these rules care: its id, and whether it reports `auth_time` at all. */
export interface UpstreamKind {
  id: string;
  /** OpenID Connect upstreams do (Core 2: REQUIRED when max_age was asked); GitHub never does */
  reportsAuthTime: boolean;
}

/**
 * `claims.id_token.acr` when essential, read as oidc-provider reads it (its
 * login prompt's essential_acr and essential_acrs checks), so the two never
 * disagree: a truthy `values` must include the acr, a truthy `value` must
 * equal it, both when both are given.
 */
export interface EssentialAcr {
  value?: unknown;
  values?: unknown[];
}

export type AuthenticationOutcome =
  | { ok: true; authTime: number; acr: string; amr: string[] }
  | { ok: false; error: 'login_required' | 'unmet_authentication_requirements'; description: string };

/** Whether a `prompt` parameter (a space-separated list; an array when repeated) asks for login. */
export const promptsLogin = (prompt: unknown): boolean =>
  [prompt ?? []].flat().flatMap((p) => String(p).split(/\s+/)).includes('login');

/** Whether the app asked for a fresh authentication (which the upstream is then asked for too). */
export const wantsReauthentication = (r: Pick<AuthenticationRequest, 'login' | 'maxAge'>) => r.login || r.maxAge !== undefined;

/** The upstream's `auth_time`, if it is a time and not in the future. */
function reportedAuthTime(reported: UpstreamAuthentication, now: number): number | undefined {
  const t = reported.authTime;
  return typeof t === 'number' && Number.isFinite(t) && t > 0 && t <= now + AUTH_TIME_TOLERANCE ? Math.min(Math.floor(t), now) : undefined;
}

function meetsEssentialAcr(essential: EssentialAcr | undefined, acr: string): boolean {
  if (!essential) return true;
  if (essential.values !== undefined && !essential.values.includes(acr)) return false;
  return essential.value === undefined || essential.value === acr;
}

/** Why a reported auth_time does not satisfy prompt=login or max_age; undefined when it does. */
function staleness(request: AuthenticationRequest, authTime: number, now: number): string | undefined {
  if (request.login && authTime < request.startedAt - AUTH_TIME_TOLERANCE) {
    return 'the upstream did not authenticate the person again (prompt=login)';
  }
  if (request.maxAge !== undefined && now - authTime > request.maxAge + AUTH_TIME_TOLERANCE) {
    return `the upstream's last authentication of the person is older than max_age (${request.maxAge} s)`;
  }
  return undefined;
}

/**
 * The outcome of an upstream sign-in for this request. `now` in seconds. A
 * reported time that is too old for prompt=login or max_age fails with
 * `login_required` (OpenID Connect Core 3.1.2.6); an essential acr the sign-in
 * does not meet fails with `unmet_authentication_requirements` (OpenID Connect
 * Unmet Authentication Requirements 1.0).
 */
export function authenticationOutcome(upstream: UpstreamKind, request: AuthenticationRequest, reported: UpstreamAuthentication, now: number): AuthenticationOutcome {
  const upstreamTime = reportedAuthTime(reported, now);
  if (upstreamTime !== undefined) {
    const stale = staleness(request, upstreamTime, now);
    if (stale) return { ok: false, error: 'login_required', description: stale };
  } else if (upstream.reportsAuthTime && wantsReauthentication(request)) {
    // asked for prompt=login or max_age, it answered without saying when: the
    // request may have been stripped on its way (never "now" for an unseen check)
    return { ok: false, error: 'login_required', description: 'the upstream did not say when it authenticated the person' };
  }
  const acr = upstreamTime === undefined ? ACR_NO_ASSURANCE : ACR_UPSTREAM_AUTH_TIME;
  if (!meetsEssentialAcr(request.essentialAcr, acr)) {
    return { ok: false, error: 'unmet_authentication_requirements', description: `this sign-in can only vouch for acr ${acr}` };
  }
  const amr = [upstream.id, ...(reported.amr ?? []).filter((m) => typeof m === 'string' && m !== '')];
  return { ok: true, authTime: upstreamTime ?? now, acr, amr: [...new Set(amr)] };
}

type IdTokenClaims = { acr?: { essential?: unknown; value?: unknown; values?: unknown }; sub?: { value?: unknown } };

/** `claims.id_token` of an OpenID Connect `claims` request parameter (a JSON string, or parsed). */
function idTokenClaims(claimsParameter: unknown): IdTokenClaims | undefined {
  let claims: unknown = claimsParameter;
  if (typeof claims === 'string') {
    try {
      claims = JSON.parse(claims);
    } catch {
      return undefined;
    }
  }
  const idToken = (claims as { id_token?: unknown } | null)?.id_token;
  return idToken && typeof idToken === 'object' ? (idToken as IdTokenClaims) : undefined;
}

/** The essential acr of a `claims` request parameter (see EssentialAcr); undefined when none is essential. */
export function essentialAcr(claimsParameter: unknown): EssentialAcr | undefined {
  const acr = idTokenClaims(claimsParameter)?.acr;
  if (!acr || !acr.essential) return undefined;
  const essential: EssentialAcr = {};
  if (acr.values) essential.values = Array.isArray(acr.values) ? acr.values : [];
  if (acr.value) essential.value = acr.value;
  return essential.values || essential.value !== undefined ? essential : undefined;
}

/**
 * The person the request names, if it does: the `sub` of its id_token_hint
 * (which oidc-provider verified at the authorization request) or a requested
 * `claims.id_token.sub.value`. A sign-in as anyone else fails with
 * login_required (OpenID Connect Core 3.1.2.1).
 */
export function namedSubject(idTokenHint: unknown, claimsParameter: unknown): string | undefined {
  const value = idTokenClaims(claimsParameter)?.sub?.value;
  if (typeof value === 'string') return value;
  if (typeof idTokenHint !== 'string') return undefined;
  try {
    const payload = JSON.parse(Buffer.from(idTokenHint.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}
