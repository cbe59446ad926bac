/**
 * What the consent page lists: everything the app receives from this
 * authorization request once the person allows it, each line marked when it
 * was not allowed before. Pure: routes.ts gathers the inputs (the request, the
 * APIs as oidc-provider resolves them, the existing grant, the prompt details).
 *
 * The app receives a requested item when it is in the existing grant or when
 * allowing adds it: consent.ts adds exactly what the prompt reports as missing
 * (`missingOIDCScope`, `missingOIDCClaims`, `missingResourceScopes`). So the
 * page lists requested ∩ (granted ∪ missing) and marks missing ∖ granted as new.
 * Access tokens for an API carry only the scopes the API offers this client,
 * which is why each API comes with its available scopes.
 */

/** The human wording for the OIDC scopes. */
export const SCOPE_TEXT: Readonly<Record<string, string>> = {
  openid: 'Know who you are (your account ID)',
  profile: 'See your name, username and picture',
  email: 'See your email address',
  offline_access: 'Stay signed in to the app when you are away',
};

/** Claims that are always in an ID token and never need consent (as oidc-provider's consent prompt has it). */
const ALWAYS_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/** What oidc-provider's consent prompt reports as not yet granted. */
export interface ConsentPromptDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

export interface ConsentSummaryInput {
  /** `interaction.params.scope`, as stored by oidc-provider (space separated) */
  scope: string | undefined;
  /** `interaction.params.claims`: the claims request parameter (JSON), if any */
  claims?: string | undefined;
  /** the OIDC scopes the provider offers */
  oidcScopes: readonly string[];
  /** each requested API (resource indicator) as resolved: its name and the scopes it offers this client */
  apis: { identifier: string; name: string; available: readonly string[] }[];
  /** the existing grant this consent extends; undefined when there is none */
  granted?: { oidcScopes: readonly string[]; claims: readonly string[]; resourceScopes: Readonly<Record<string, readonly string[]>> };
  /** `interaction.prompt.details` */
  missing: ConsentPromptDetails;
}

export interface ConsentItem {
  /** the scope or claim */
  value: string;
  isNew: boolean;
}

export interface ConsentScopeLine extends ConsentItem {
  /** the wording the page shows */
  text: string;
}

export interface ConsentApiLine {
  identifier: string;
  name: string;
  scopes: ConsentItem[];
}

export interface ConsentSummary {
  scopes: ConsentScopeLine[];
  /** claims asked for one by one with the `claims` parameter */
  claims: ConsentItem[];
  apis: ConsentApiLine[];
  /** whether any line is new */
  anyNew: boolean;
}

const words = (s: string | undefined): string[] => [...new Set((s ?? '').split(' ').filter(Boolean))];

/**
 * The claims named in a `claims` request parameter (userinfo and id_token
 * members), as oidc-provider reads them; unsupported ones never reach the grant
 * nor the prompt details, so `receive` drops them.
 */
export function requestedClaims(claims: string | undefined): string[] {
  if (!claims) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(claims);
  } catch {
    return [];
  }
  if (!parsed || typeof parsed !== 'object') return [];
  const out = new Set<string>();
  for (const member of ['userinfo', 'id_token'] as const) {
    const requested = (parsed as Record<string, unknown>)[member];
    if (!requested || typeof requested !== 'object') continue;
    for (const [claim, value] of Object.entries(requested)) {
      if ((value === null || (typeof value === 'object' && !Array.isArray(value)))) out.add(claim);
    }
  }
  return [...out].filter((c) => !ALWAYS_CLAIMS.has(c));
}

/** Requested items the app receives (already granted or about to be), in request order, new ones marked. */
function receive(requested: readonly string[], granted: readonly string[], missing: readonly string[] | undefined): ConsentItem[] {
  const had = new Set(granted);
  const adds = new Set(missing ?? []);
  return requested.filter((v) => had.has(v) || adds.has(v)).map((value) => ({ value, isNew: !had.has(value) }));
}

export function consentSummary(input: ConsentSummaryInput): ConsentSummary {
  const requested = words(input.scope);
  const granted = input.granted ?? { oidcScopes: [], claims: [], resourceScopes: {} };

  const scopes = receive(requested.filter((s) => input.oidcScopes.includes(s)), granted.oidcScopes, input.missing.missingOIDCScope)
    .map((item) => ({ ...item, text: SCOPE_TEXT[item.value] ?? item.value }));
  const claims = receive(requestedClaims(input.claims), granted.claims, input.missing.missingOIDCClaims);
  const apis = input.apis.map((api) => ({
    identifier: api.identifier,
    name: api.name,
    scopes: receive(
      requested.filter((s) => api.available.includes(s)),
      granted.resourceScopes[api.identifier] ?? [],
      input.missing.missingResourceScopes?.[api.identifier],
    ),
  }));
  const anyNew = [...scopes, ...claims, ...apis.flatMap((a) => a.scopes)].some((i) => i.isNew);
  return { scopes, claims, apis, anyNew };
}
