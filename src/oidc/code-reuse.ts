import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import { deletePayloadByKey, type PayloadStore } from '../storage/oidc-payloads.js';
import { digestOf } from '../storage/digest.js';
import { storedKey } from '../storage/payload-sealing.js';
import { revokeJwtAccessToken } from '../services/access-tokens.js';

/**
 * A redeemed authorization code presented again revokes the tokens issued from
 * that code (RFC 6749 §4.1.2, OpenID Connect Core 3.1.3.2), not the person's
 * other authorizations of the same app. oidc-provider revokes the whole grant,
 * which Gatehouse shares between every authorization of one person and app
 * (a remembered consent is one grant), so here:
 * - every access and refresh token issued by a code exchange, and by refreshes
 *   descending from it, is listed under the code (a digest of it) for as long
 *   as the code can be presented at all (its own lifetime: a consumed code that
 *   has expired is "not found", never "already consumed"): one write per
 *   exchange, none for refreshes once the code has expired;
 * - the reuse revokes exactly those: stored tokens are deleted, JWT access
 *   tokens are put on the revocation list (services/access-tokens.ts);
 * - the grant and its other tokens stay. When the list cannot be found (the
 *   first exchange still running, or its write failed), the whole grant is
 *   revoked, as oidc-provider would: never less than the code's tokens.
 */

const TYPE = 'CodeTokens';
/** on refresh tokens: `<digest of the code>.<the code's expiry, seconds>` */
const ORIGIN = 'gatehouseCode';

interface IssuedTokens {
  /** stored (opaque) tokens: their type and stored key */
  stored: { type: string; key: string }[];
  /** JWT access tokens, which are not stored: what revoking one needs */
  jwt: { jti: string; exp: number; client_id?: string }[];
}

type Token = { jti: string; exp?: number; clientId?: string; kind: string; [ORIGIN]?: string };

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The code (digest and expiry) the tokens saved in this request descend from, if any. */
function originOf(ctx: KoaContextWithOIDC | undefined): string | undefined {
  const oidc = ctx?.oidc;
  if (oidc?.route !== 'token') return undefined;
  const grantType = oidc.params?.grant_type;
  if (grantType === 'authorization_code') {
    const code = oidc.entities.AuthorizationCode as Token | undefined;
    return code?.jti && code.exp ? `${digestOf(code.jti)}.${code.exp}` : undefined;
  }
  if (grantType !== 'refresh_token') return undefined;
  const previous = (oidc.entities.RotatedRefreshToken ?? oidc.entities.RefreshToken) as Token | undefined;
  const origin = previous?.[ORIGIN];
  // past the code's expiry nothing can present it again: stop following
  return origin && Number(origin.split('.')[1]) > nowSeconds() ? origin : undefined;
}

/** Tokens issued in this request, by the code they descend from: written once, after the grant. */
const pending = new WeakMap<object, { origin: string; issued: IssuedTokens }>();

function rememberIssued(ctx: KoaContextWithOIDC, origin: string, token: Token, value: string): void {
  const entry = pending.get(ctx) ?? { origin, issued: { stored: [], jwt: [] } };
  pending.set(ctx, entry);
  const isJwt = token.kind === 'AccessToken' && value.split('.').length === 3;
  if (isJwt) entry.issued.jwt.push({ jti: token.jti, exp: token.exp ?? nowSeconds(), client_id: token.clientId });
  else entry.issued.stored.push({ type: token.kind, key: storedKey(token.kind, token.jti) });
}

async function saveIssued(store: PayloadStore, origin: string, issued: IssuedTokens): Promise<void> {
  const [code, exp] = origin.split('.');
  const existing = (await store.find(TYPE, code))?.payload as IssuedTokens | undefined;
  const all = existing ? { stored: [...existing.stored, ...issued.stored], jwt: [...existing.jwt, ...issued.jwt] } : issued;
  await store.save(TYPE, code, all as unknown as Record<string, unknown>, new Date(Number(exp) * 1000));
}

/** Revokes the tokens issued from this code; false when there is no list of them. */
async function revokeIssued(db: Db, store: PayloadStore, codeValue: string): Promise<boolean> {
  const record = await store.find(TYPE, digestOf(codeValue));
  if (!record) return false;
  const issued = record.payload as unknown as IssuedTokens;
  for (const t of issued.stored) await deletePayloadByKey(db, t.type, t.key);
  for (const t of issued.jwt) await revokeJwtAccessToken(db, store, { jti: t.jti, exp: t.exp, client_id: t.client_id });
  return true;
}

/** The code being presented again, in oidc-provider's revocation of its grant. */
function reusedCode(ctx: KoaContextWithOIDC | undefined): string | undefined {
  const oidc = ctx?.oidc;
  const code = oidc?.params?.code;
  return oidc?.route === 'token' && oidc.params?.grant_type === 'authorization_code' && typeof code === 'string' ? code : undefined;
}

/** Per request presenting a code again: whether that code's own tokens were revoked (else the whole grant is). */
const reuses = new WeakMap<object, Promise<boolean>>();

/**
 * `revokeGrantPolicy` (run before oidc-provider revokes anything): a reused
 * code revokes its own tokens here and keeps the grant; otherwise
 * oidc-provider's default (revoking a stored access token keeps its grant).
 */
export function revokeGrantPolicy(db: Db, store: PayloadStore) {
  return async (ctx: KoaContextWithOIDC): Promise<boolean> => {
    const code = reusedCode(ctx);
    if (code === undefined) return !(ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken);
    const revoked = revokeIssued(db, store, code);
    reuses.set(ctx, revoked);
    return !(await revoked);
  };
}

export function installCodeReuseScope(provider: Provider, store: PayloadStore, onError: (err: unknown) => void): void {
  // refresh tokens keep the code they descend from
  const refreshPayload = provider.RefreshToken.IN_PAYLOAD;
  Object.defineProperty(provider.RefreshToken, 'IN_PAYLOAD', { configurable: true, get: () => [...refreshPayload, ORIGIN] });

  for (const model of [provider.AccessToken, provider.RefreshToken]) {
    const proto = model.prototype as unknown as Token & { save(...args: unknown[]): Promise<string> };
    const save = proto.save;
    proto.save = async function saveTracked(this: Token, ...args: unknown[]) {
      const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
      const origin = this[ORIGIN] ?? originOf(ctx);
      if (origin && model === provider.RefreshToken) this[ORIGIN] = origin;
      const value = await save.apply(this, args);
      if (origin && ctx) rememberIssued(ctx, origin, this, value);
      return value;
    } as typeof proto.save;
  }

  provider.use(async (ctx, next) => {
    await next();
    const entry = pending.get(ctx);
    if (!entry) return;
    pending.delete(ctx);
    await saveIssued(store, entry.origin, entry.issued).catch(onError);
  });

  // the code's own tokens were revoked (revokeGrantPolicy): the grant's others stay
  for (const model of [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode]) {
    const revokeByGrantId = model.revokeByGrantId.bind(model);
    model.revokeByGrantId = async function revokeOfCode(grantId: string) {
      const ctx = Provider.ctx as object | undefined;
      const revoked = ctx && reuses.get(ctx);
      if (revoked && (await revoked)) return;
      await revokeByGrantId(grantId);
    };
  }
}
