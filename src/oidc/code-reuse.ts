import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import type { PayloadStore } from '../storage/oidc-payloads.js';
import { digestOf } from '../storage/digest.js';
import { CODE_CLAIM, revokeTokensOfCode } from '../services/access-tokens.js';

/**
 * A redeemed authorization code presented again revokes the tokens issued from
 * that code (RFC 6749 §4.1.2, OpenID Connect Core 3.1.3.2), not the person's
 * other authorizations of the same app. oidc-provider revokes the whole grant,
 * which Gatehouse shares between every authorization of one person and app (a
 * remembered consent is one grant), so here:
 * - every access and refresh token issued by a code exchange, and by refreshes
 *   descending from it, carries a tag: a digest of the code and the code's
 *   expiry (a consumed code that has expired is "not found", never "already
 *   consumed", so past that nothing is tagged). Stored tokens keep it in their
 *   payload, JWT access tokens in the `gatehouse_code` claim. The tag rides on
 *   writes that happen anyway: no extra statement on the token path.
 * - the reuse deletes the stored tokens of the grant with that tag, and records
 *   the code as revoked, which the JWT revocation check reads (one more key in
 *   a lookup it makes anyway). It sweeps again a few seconds later, for tokens
 *   whose exchange was still running, on any instance.
 * - the grant and its other tokens stay (revokeGrantPolicy).
 */

/** on access and refresh token payloads: `<digest of the code>.<the code's expiry, seconds>` */
export const CODE_TAG = 'gatehouseCode';
/** a second sweep after a reuse, for tokens of an exchange that was still running, ms */
const SWEEP_AGAIN_MS = 5000;

type Token = { jti: string; exp?: number; [CODE_TAG]?: string };

/** The tag for tokens saved in this request: of the code being redeemed, or of the refresh token being used. */
function tagOf(ctx: KoaContextWithOIDC | undefined): string | undefined {
  const oidc = ctx?.oidc;
  if (oidc?.route !== 'token') return undefined;
  const grantType = oidc.params?.grant_type;
  if (grantType === 'authorization_code') {
    const code = oidc.entities.AuthorizationCode as Token | undefined;
    return code?.jti && code.exp ? `${digestOf(code.jti)}.${code.exp}` : undefined;
  }
  if (grantType !== 'refresh_token') return undefined;
  const previous = (oidc.entities.RotatedRefreshToken ?? oidc.entities.RefreshToken) as Token | undefined;
  const tag = previous?.[CODE_TAG];
  // past the code's expiry nothing can present it again: stop tagging
  return tag && Number(tag.split('.')[1]) > Date.now() / 1000 ? tag : undefined;
}

/** The code being presented again, in oidc-provider's revocation of its grant. */
function reusedCode(ctx: KoaContextWithOIDC | undefined): string | undefined {
  const oidc = ctx?.oidc;
  const code = oidc?.params?.code;
  return oidc?.route === 'token' && oidc.params?.grant_type === 'authorization_code' && typeof code === 'string' ? code : undefined;
}

/** `revokeGrantPolicy`: a reused code keeps the grant; otherwise oidc-provider's default (revoking a stored access token keeps its grant). */
export const revokeGrantPolicy = (ctx: KoaContextWithOIDC): boolean =>
  reusedCode(ctx) === undefined && !(ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken);

/** The JWT customizer's part: a JWT access token carries the digest of its code. */
export function codeClaim(token: object, payload: Record<string, unknown>): void {
  const tag = (token as Token)[CODE_TAG];
  if (tag) payload[CODE_CLAIM] = tag.split('.')[0];
}

export function installCodeReuseScope(provider: Provider, db: Db, store: PayloadStore, onError: (err: unknown) => void): void {
  for (const model of [provider.AccessToken, provider.RefreshToken]) {
    const inPayload = model.IN_PAYLOAD;
    Object.defineProperty(model, 'IN_PAYLOAD', { configurable: true, get: () => [...inPayload, CODE_TAG] });
    const proto = model.prototype as unknown as Token & { save(...args: unknown[]): Promise<string> };
    const save = proto.save;
    proto.save = function saveTagged(this: Token, ...args: unknown[]) {
      const tag = this[CODE_TAG] ?? tagOf(Provider.ctx as KoaContextWithOIDC | undefined);
      if (tag) this[CODE_TAG] = tag;
      return save.apply(this, args);
    } as typeof proto.save;
  }

  // a reused code: its own tokens instead of the grant's (the grant stays: revokeGrantPolicy)
  for (const model of [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode]) {
    const revokeByGrantId = model.revokeByGrantId.bind(model);
    model.revokeByGrantId = async function revokeOfCode(grantId: string) {
      const code = reusedCode(Provider.ctx as KoaContextWithOIDC | undefined);
      if (code === undefined) return revokeByGrantId(grantId);
      if (model !== provider.AccessToken) return;
      const revoke = () => revokeTokensOfCode(db, store, digestOf(code), grantId, CODE_TAG, Date.now());
      await revoke();
      setTimeout(() => void revoke().catch(onError), SWEEP_AGAIN_MS).unref();
    };
  }
}
