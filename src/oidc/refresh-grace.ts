import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';
import type { PayloadStore } from '../storage/oidc-payloads.js';
import { isFapi2 } from './client-metadata.js';

/**
 * Refresh tokens that survive two tabs. Refresh tokens rotate, and presenting a
 * rotated one again revokes the grant (RFC 9700 §4.14.2): two tabs of one app
 * refreshing at once would look like theft and sign the person out. For
 * `REFRESH_REUSE_GRACE_SECONDS` after a rotation, the same refresh token gets
 * the same answer again: the same successor refresh token and access token.
 * After that, reuse revokes the grant as before.
 *
 * It wraps oidc-provider's own refresh_token grant, so client authentication
 * and every check of oidc-provider run first; it never issues anything itself.
 * - A rotation stores its answer for the grace period (one insert), encrypted
 *   with a key derived from the old refresh token: the row is useless without
 *   the token it answers. The store keeps it under a digest of the token, like
 *   every artifact (storage/payload-sealing.ts).
 * - When the grant looks up a refresh token that was consumed within the grace
 *   period, the lookup waits for that answer (the first request may still be
 *   running, on any instance; up to PENDING_WAIT_MS) and, if there is one,
 *   reports the token as not found: oidc-provider stops before it revokes
 *   anything. The answer is then repeated if it is the same client and, for
 *   DPoP-bound tokens, a fresh proof of the same key; otherwise the grant runs
 *   again, as if there were no grace, and a reuse revokes the grant.
 * - Two requests that both found the token unconsumed: the second one's consume
 *   fails, and it waits for the first one's answer the same way.
 * FAPI 2.0 clients do not rotate refresh tokens, so they need no grace.
 */

const TYPE = 'RefreshGrace';
/** how long a repeat waits for the first request's answer, ms */
const PENDING_WAIT_MS = 5000;

interface GraceRow {
  clientId: string;
  /** the DPoP key thumbprint the successor access token is bound to */
  jkt?: string;
  /** the token response, AES-256-GCM under a key derived from the old refresh token */
  answer?: { iv: string; tag: string; data: string };
  /** what the first request asked for (resource, scope): a repeat must ask for the same */
  request?: string;
}

/** The parameters that shape a refresh's answer. */
const requestOf = (ctx: KoaContextWithOIDC) => {
  const { resource, scope } = (ctx.oidc.params ?? {}) as { resource?: unknown; scope?: unknown };
  return JSON.stringify([resource ?? null, scope ?? null]);
};

const answerKey = (token: string) => Buffer.from(hkdfSync('sha256', token, '', 'gatehouse refresh grace answer', 32));

function seal(token: string, body: unknown): NonNullable<GraceRow['answer']> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', answerKey(token), iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(body), 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64url'), tag: cipher.getAuthTag().toString('base64url'), data: data.toString('base64url') };
}

function open(token: string, answer: NonNullable<GraceRow['answer']>): unknown {
  const decipher = createDecipheriv('aes-256-gcm', answerKey(token), Buffer.from(answer.iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(answer.tag, 'base64url'));
  return JSON.parse(Buffer.concat([decipher.update(Buffer.from(answer.data, 'base64url')), decipher.final()]).toString('utf8'));
}

/** Requests answered with a kept answer: they issued nothing (metrics count them apart). */
const repeats = new WeakSet<object>();
export const isGraceRepeat = (ctx: object) => repeats.has(ctx);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RefreshTokenModel {
  find(value: string, options?: { ignoreExpiration?: boolean }): Promise<{ consumed?: number } | undefined>;
}

export function installRefreshGrace(provider: Provider, store: PayloadStore, graceSeconds: number, now: () => number = Date.now): void {
  if (!(graceSeconds > 0)) return;
  const handlers = instance(provider).grantTypeHandlers;
  const refreshGrant = handlers.get('refresh_token');
  if (!refreshGrant) return;

  /** Requests of the refresh grant whose token lookups may find a kept answer. */
  const graceLookups = new WeakSet<object>();
  /** The kept answer a lookup found, per request. */
  const found = new WeakMap<object, { token: string; grace: GraceRow }>();

  /** The answer kept for this token; waits while the first request is still running. */
  async function keptAnswer(token: string): Promise<GraceRow | null> {
    const deadline = now() + PENDING_WAIT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      const row = await store.find(TYPE, token);
      if (row && (!row.expiresAt || row.expiresAt.getTime() > now())) return row.payload as unknown as GraceRow;
      if (now() > deadline) return null;
      await sleep(wait);
    }
  }

  const model = provider.RefreshToken as unknown as RefreshTokenModel;
  const find = model.find.bind(model);
  model.find = async function findWithGrace(value, options) {
    const token = await find(value, options);
    const ctx = Provider.ctx;
    const consumed = token?.consumed;
    if (!ctx || !graceLookups.has(ctx) || typeof consumed !== 'number' || now() / 1000 - consumed > graceSeconds) return token;
    const grace = await keptAnswer(value);
    if (!grace) return token;
    found.set(ctx, { token: value, grace });
    // oidc-provider answers "not found" and touches nothing; the wrapper below repeats the answer
    return undefined;
  };

  /** A repeat within the grace period: the same answer, to the same client and DPoP key only. */
  async function repeat(ctx: KoaContextWithOIDC, token: string, grace: GraceRow, proofRecorded: boolean): Promise<boolean> {
    const client = ctx.oidc.client!;
    if (!grace.answer || grace.clientId !== client.clientId) return false;
    const dPoP = await validateDpop(provider, ctx);
    if ((dPoP?.thumbprint ?? undefined) !== grace.jkt) return false;
    // the same app asking for something else (another API) gets no answer made for another request,
    // and no revocation either: it is the rightful app, a moment after its other tab
    if (grace.request !== undefined && grace.request !== requestOf(ctx)) {
      throw new errors.InvalidGrant('this refresh token was just rotated by a request for other parameters: use the refresh token that request received');
    }
    // a proof is used once; the grant already recorded it when it got as far as the consume
    if (!proofRecorded) await checkDpopReplay(provider, ctx, dPoP, client.clientId);
    ctx.body = open(token, grace.answer);
    repeats.add(ctx);
    return true;
  }

  handlers.set('refresh_token', async function refreshWithGrace(ctx: KoaContextWithOIDC) {
    const token = ctx.oidc.params?.refresh_token;
    if (typeof token !== 'string' || !token || isFapi2(ctx.oidc.client)) return refreshGrant(ctx);
    graceLookups.add(ctx);
    try {
      await refreshGrant(ctx);
    } catch (err) {
      // lost a race for the token (its consume failed, after the DPoP proof was recorded):
      // look again, which waits for the winner's answer
      const lostRace = !found.has(ctx);
      if (lostRace && err instanceof errors.InvalidGrant) await model.find(token, { ignoreExpiration: true });
      const kept = found.get(ctx);
      if (!kept) throw err;
      if (await repeat(ctx, kept.token, kept.grace, lostRace)) return;
      // not a repeat this client may have: the grant as if there were no grace (a reuse revokes it)
      graceLookups.delete(ctx);
      return refreshGrant(ctx);
    }
    if (!ctx.oidc.entities.RotatedRefreshToken) return;
    const row: GraceRow = { clientId: ctx.oidc.client!.clientId, jkt: ctx.oidc.entities.AccessToken?.jkt, answer: seal(token, ctx.body), request: requestOf(ctx) };
    try {
      await store.save(TYPE, token, row as unknown as Record<string, unknown>, new Date(now() + graceSeconds * 1000));
    } catch {
      // the tokens are issued and the old one is consumed: the answer still goes out, and only
      // this token's grace is lost (a repeat then counts as a reuse)
    }
  });
}
