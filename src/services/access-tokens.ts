import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { deleteGrants, deleteTaggedOfGrant, type PayloadStore } from '../storage/oidc-payloads.js';
import { findAccount } from './accounts.js';

/**
 * The state of JWT access tokens, which are not stored: a revoked one is
 * recorded (by `jti`, until it expires) in the database every node reads, and
 * a person's token stands only while its account is enabled and its grant
 * exists. Introspection, the management API and token exchange ask here.
 */

/** artifacts of this type record revoked JWT access tokens (stored, like all, under a digest) */
const REVOKED = 'RevokedAccessToken';
/** artifacts of this type record authorization codes presented twice: every token of theirs is revoked */
const REVOKED_CODE = 'RevokedCodeTokens';

/**
 * The claim a JWT access token issued from an authorization code (or from a
 * refresh descending from it, while the code lives) carries: a digest of that
 * code, so that presenting the code again revokes it (oidc/code-reuse.ts).
 */
export const CODE_CLAIM = 'gatehouse_code';
/** The longest an access token lives (an API's TTL is at most a day), seconds. */
const LONGEST_ACCESS_TOKEN = 24 * 60 * 60;

/** The claims of a JWT access token that Gatehouse issued (RFC 9068), as far as these rules read them. */
export interface JwtAccessTokenClaims {
  jti?: unknown;
  exp?: unknown;
  sub?: unknown;
  client_id?: unknown;
  /** the grant a person's token was issued under (oidc/structured-tokens.ts names it) */
  grant_id?: unknown;
  act?: unknown;
  /** the digest of the authorization code it descends from, if any */
  [CODE_CLAIM]?: unknown;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** The person a token speaks for; undefined for a client's own token (client_credentials: `sub` is the client). */
export function personOf(claims: JwtAccessTokenClaims): string | undefined {
  const sub = text(claims.sub);
  return sub !== undefined && sub !== text(claims.client_id) ? sub : undefined;
}

/**
 * RFC 7009 for a JWT access token: it is refused everywhere Gatehouse checks
 * live state until it expires, and, as oidc-provider does for stored access
 * tokens, the grant it was issued under ends with every token of it.
 */
export async function revokeJwtAccessToken(db: Db, store: PayloadStore, claims: JwtAccessTokenClaims): Promise<void> {
  const jti = text(claims.jti);
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  if (!jti || !exp) return;
  await store.save(REVOKED, jti, { clientId: text(claims.client_id) ?? null }, new Date(exp * 1000));
  const grantId = text(claims.grant_id);
  if (grantId) await deleteGrants(db, [grantId]);
}

export async function isJwtAccessTokenRevoked(store: PayloadStore, claims: JwtAccessTokenClaims): Promise<boolean> {
  const jti = text(claims.jti);
  const code = text(claims[CODE_CLAIM]);
  // looked up together: the store batches both into one query
  const [byJti, byCode] = await Promise.all([jti ? store.find(REVOKED, jti) : null, code ? store.find(REVOKED_CODE, code) : null]);
  return byJti !== null || byCode !== null;
}

/**
 * An authorization code presented twice: every token issued from it is
 * revoked. Stored ones carry `<code digest>.<expiry>` in their payload's
 * `tagField` and are deleted; JWT ones carry the digest in CODE_CLAIM, which
 * the revocation check reads (recorded for as long as any can live).
 */
export async function revokeTokensOfCode(db: Db, store: PayloadStore, codeDigest: string, grantId: string, tagField: string, now: number): Promise<void> {
  await store.save(REVOKED_CODE, codeDigest, {}, new Date(now + LONGEST_ACCESS_TOKEN * 1000));
  await deleteTaggedOfGrant(db, grantId, ['AccessToken', 'RefreshToken'], tagField, `${codeDigest}.`);
}

/**
 * Whether a JWT access token still stands, apart from its signature and
 * expiry (checked by whoever read it): not revoked, and for a person's token,
 * the account enabled and the grant it names (if any) alive at `now`.
 */
export async function jwtAccessTokenStands(store: PayloadStore, hot: HotStatements, claims: JwtAccessTokenClaims, now: number): Promise<boolean> {
  const person = personOf(claims);
  const grantId = text(claims.grant_id);
  const [revoked, account, grant] = await Promise.all([
    isJwtAccessTokenRevoked(store, claims),
    person ? findAccount(hot, person) : null,
    grantId ? store.find('Grant', grantId) : null,
  ]);
  if (revoked) return false;
  if (person && !account) return false;
  if (grantId && (!grant || (grant.expiresAt !== null && grant.expiresAt.getTime() <= now))) return false;
  return true;
}
