import type { Db } from './database.js';
import { UniqueViolationError, translated } from './errors.js';

/**
 * Leases on work one node does at a time, in the `Lease` table: a row per
 * name, held by `holder` until `expiresAt`. Acquiring is one conditional
 * UPDATE, so of racing nodes exactly one wins, on SQLite and PostgreSQL alike.
 */

type Leases = Pick<Db, 'lease'>;

/** Makes sure the lease's row exists (expired, held by nobody). Safe to race. */
export async function ensureLeaseRow(db: Leases, name: string): Promise<void> {
  if (await db.lease.findUnique({ where: { name }, select: { name: true } })) return;
  try {
    await translated(db.lease.create({ data: { name, holder: '', expiresAt: new Date(0) } }));
  } catch (err) {
    if (!(err instanceof UniqueViolationError)) throw err;
  }
}

/**
 * Takes or renews the lease until `until` when it is free, expired or already
 * ours; true when `holder` holds it now.
 */
export async function acquireLease(db: Leases, name: string, holder: string, now: Date, until: Date): Promise<boolean> {
  const { count } = await db.lease.updateMany({
    where: { name, OR: [{ holder }, { expiresAt: { lte: now } }] },
    data: { holder, expiresAt: until },
  });
  return count === 1;
}

/** Gives the lease up, so another node may take it at once. */
export async function releaseLease(db: Leases, name: string, holder: string): Promise<void> {
  await db.lease.updateMany({ where: { name, holder }, data: { expiresAt: new Date(0) } });
}

/**
 * Inside a transaction, as its first statement: writes the lease's row, which
 * makes every other transaction that does the same wait until this one ends
 * (a row lock on PostgreSQL, the write lock on SQLite). The row must exist.
 */
export async function serializeOn(tx: Leases, name: string, holder: string): Promise<void> {
  await tx.lease.updateMany({ where: { name }, data: { holder } });
}
