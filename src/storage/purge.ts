import type { Db } from './database.js';

/** Deletes oidc-provider artifacts whose expiry has passed; returns how many. */
export async function purgeExpired(db: Db, now: Date): Promise<number> {
  const { count } = await db.oidcPayload.deleteMany({ where: { expiresAt: { lt: now } } });
  return count;
}
