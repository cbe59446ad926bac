import type { Db } from './database.js';

/** Initial access tokens as oidc-provider stores them (OidcPayload rows). */

const TYPE = 'InitialAccessToken';

export interface RegistrationTokenInfo {
  /** the first characters of the token: enough to name it, useless to use it */
  prefix: string;
  expiresAt: Date | null;
  used: boolean;
  policies: string[];
}

export async function listRegistrationTokens(db: Pick<Db, 'oidcPayload'>, now: Date): Promise<RegistrationTokenInfo[]> {
  const rows = await db.oidcPayload.findMany({
    where: { type: TYPE, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    orderBy: { id: 'asc' },
  });
  return rows.map((r) => ({
    prefix: r.id.slice(0, 8),
    expiresAt: r.expiresAt,
    used: r.consumedAt !== null,
    policies: ((r.payload as { policies?: string[] }).policies ?? []),
  }));
}

/** Deletes the one token whose value starts with `prefix`; returns how many matched. */
export async function revokeRegistrationToken(db: Pick<Db, 'oidcPayload'>, prefix: string): Promise<number> {
  const matches = await db.oidcPayload.findMany({ where: { type: TYPE, id: { startsWith: prefix } }, select: { id: true } });
  if (matches.length === 1) await db.oidcPayload.deleteMany({ where: { type: TYPE, id: matches[0].id } });
  return matches.length;
}
