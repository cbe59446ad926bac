import type { Db } from './database.js';
import { deleteGrants } from './oidc-payloads.js';
import type { HotStatements } from './hot-statements.js';
import { isStorable } from './text.js';

/** Consent remembered per account and client: the grant the person approved. */

export type ConsentFilter = { accountId?: string; clientId?: string };

export interface ConsentRecord {
  accountId: string;
  clientId: string;
  grantId: string;
  createdAt: Date;
  updatedAt: Date;
}

export async function saveConsent(db: Pick<Db, 'consent'>, accountId: string, clientId: string, grantId: string): Promise<void> {
  await db.consent.upsert({
    where: { accountId_clientId: { accountId, clientId } },
    create: { accountId, clientId, grantId },
    update: { grantId },
  });
}

/** On the hot path (every authorization request of a signed-in person): a prepared statement, not Prisma. */
export async function findConsentGrantId(hot: Pick<HotStatements, 'findConsentGrantId'>, accountId: string, clientId: string): Promise<string | null> {
  return isStorable(accountId) && isStorable(clientId) ? hot.findConsentGrantId(accountId, clientId) : null;
}

/** true when every value of the filter is text a database stores; one that is not matches nothing */
const storableFilter = (filter: ConsentFilter) => Object.values(filter).every((v) => v === undefined || isStorable(v));

export async function listConsents(db: Pick<Db, 'consent'>, filter: ConsentFilter): Promise<ConsentRecord[]> {
  if (!storableFilter(filter)) return [];
  return db.consent.findMany({ where: filter, orderBy: [{ clientId: 'asc' }, { accountId: 'asc' }] });
}

/**
 * Forgets the consents matching the filter and deletes every stored artifact of
 * their grants (the Grant, refresh tokens, opaque access tokens, codes). Call it
 * inside a transaction. Returns the forgotten consents (none for a filter
 * with text no database stores).
 */
export async function deleteConsents(tx: Pick<Db, 'consent' | 'oidcPayload'>, filter: ConsentFilter): Promise<ConsentRecord[]> {
  if (!storableFilter(filter)) return [];
  const consents = await tx.consent.findMany({ where: filter });
  if (consents.length) {
    await deleteGrants(tx, consents.map((c) => c.grantId));
    await tx.consent.deleteMany({ where: filter });
  }
  return consents;
}
