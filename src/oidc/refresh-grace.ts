import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
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
 * - The first request for a token claims a row (an atomic insert, on every
 *   instance) and runs the grant. Its answer is stored for the grace period,
 *   encrypted with a key derived from the old refresh token: the row is useless
 *   without the token it answers. The row's id is a hash of the token.
 * - A concurrent or later request for the same token waits for that answer (up
 *   to PENDING_WAIT_MS) and gets it, if it is the same client and, for
 *   DPoP-bound tokens, a fresh proof with the same key. Otherwise it runs the
 *   grant, which refuses a rotated token and revokes the grant.
 * FAPI 2.0 clients do not rotate refresh tokens, so they need no grace.
 */

const TYPE = 'RefreshGrace';
/** how long a claimed row waits for its answer before it counts as abandoned, seconds */
const PENDING_SECONDS = 10;
/** how long a second request waits for the first one's answer, ms */
const PENDING_WAIT_MS = 5000;

interface GraceRow {
  clientId: string;
  /** the DPoP key thumbprint the successor access token is bound to */
  jkt?: string;
  /** the token response, AES-256-GCM under a key derived from the old refresh token */
  answer?: { iv: string; tag: string; data: string };
}

const rowId = (token: string) => createHash('sha256').update(token).digest('base64url');
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

export function installRefreshGrace(provider: Provider, store: PayloadStore, graceSeconds: number, now: () => number = Date.now): void {
  if (!(graceSeconds > 0)) return;
  const handlers = instance(provider).grantTypeHandlers;
  const refreshGrant = handlers.get('refresh_token');
  if (!refreshGrant) return;

  /** The stored answer for this token, waiting while the first request is still running. */
  async function settledAnswer(id: string): Promise<GraceRow | null> {
    const deadline = now() + PENDING_WAIT_MS;
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      const row = await store.find(TYPE, id);
      if (!row || (row.expiresAt && row.expiresAt.getTime() <= now())) return null;
      const grace = row.payload as unknown as GraceRow;
      if (grace.answer || now() > deadline) return grace;
      await sleep(wait);
    }
  }

  /** The first request for a token: the grant itself, then its answer kept for the grace period. */
  async function firstUse(ctx: KoaContextWithOIDC, id: string, token: string): Promise<void> {
    try {
      await refreshGrant!(ctx);
    } catch (err) {
      await store.delete(TYPE, id);
      throw err;
    }
    if (!ctx.oidc.entities.RotatedRefreshToken) {
      await store.delete(TYPE, id);
      return;
    }
    const row: GraceRow = { clientId: ctx.oidc.client!.clientId, jkt: ctx.oidc.entities.AccessToken?.jkt, answer: seal(token, ctx.body) };
    await store.save(TYPE, id, row as unknown as Record<string, unknown>, new Date(now() + graceSeconds * 1000));
  }

  /** A repeat within the grace period: the same answer, to the same client and DPoP key only. */
  async function repeat(ctx: KoaContextWithOIDC, token: string, grace: GraceRow): Promise<boolean> {
    const client = ctx.oidc.client!;
    if (!grace.answer || grace.clientId !== client.clientId) return false;
    const dPoP = await validateDpop(provider, ctx);
    if ((dPoP?.thumbprint ?? undefined) !== grace.jkt) return false;
    await checkDpopReplay(provider, ctx, dPoP, client.clientId);
    ctx.body = open(token, grace.answer);
    repeats.add(ctx);
    return true;
  }

  handlers.set('refresh_token', async function refreshWithGrace(ctx: KoaContextWithOIDC) {
    const token = ctx.oidc.params?.refresh_token;
    if (typeof token !== 'string' || !token || isFapi2(ctx.oidc.client)) return refreshGrant(ctx);
    const id = rowId(token);
    const pending: GraceRow = { clientId: ctx.oidc.client!.clientId };
    const at = now();
    if (await store.saveIfAbsent(TYPE, id, pending as unknown as Record<string, unknown>, new Date(at + PENDING_SECONDS * 1000), new Date(at))) {
      return firstUse(ctx, id, token);
    }
    const grace = await settledAnswer(id);
    if (grace && (await repeat(ctx, token, grace))) return;
    // no answer to repeat: oidc-provider refuses a rotated token and revokes its grant
    return refreshGrant(ctx);
  });
}
