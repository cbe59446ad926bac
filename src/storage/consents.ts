import type { Db } from './database.js';

/** Consent remembered per account and client: the grant the person approved. */

type ConsentFilter = { accountId?: string; clientId?: string };

export function rememberConsent(db: Pick<Db, 'consent'>, accountId: string, clientId: string, grantId: string) {
  return db.consent.upsert({
    where: { accountId_clientId: { accountId, clientId } },
    create: { accountId, clientId, grantId },
    update: { grantId },
  });
}

export async function findConsent(db: Pick<Db, 'consent'>, accountId: string, clientId: string): Promise<string | null> {
  const row = await db.consent.findUnique({ where: { accountId_clientId: { accountId, clientId } }, select: { grantId: true } });
  return row?.grantId ?? null;
}

export interface ConsentRecord {
  accountId: string;
  clientId: string;
  grantId: string;
  createdAt: Date;
  updatedAt: Date;
}

export function listConsents(db: Pick<Db, 'consent'>, filter: ConsentFilter): Promise<ConsentRecord[]> {
  return db.consent.findMany({ where: filter, orderBy: [{ clientId: 'asc' }, { accountId: 'asc' }] });
}

/**
 * Inside a transaction: forgets the consents matching the filter and deletes
 * every stored artifact of their grants (the Grant, refresh tokens, opaque
 * access tokens, codes). Returns the forgotten consents.
 */
export async function revokeConsentsTx(tx: Pick<Db, 'consent' | 'oidcPayload'>, filter: ConsentFilter): Promise<ConsentRecord[]> {
  const consents = await tx.consent.findMany({ where: filter });
  const grantIds = consents.map((c) => c.grantId);
  if (grantIds.length) {
    await tx.oidcPayload.deleteMany({ where: { OR: [{ grantId: { in: grantIds } }, { type: 'Grant', id: { in: grantIds } }] } });
    await tx.consent.deleteMany({ where: filter });
  }
  return consents;
}

/** revokeConsentsTx in its own transaction. */
export function revokeConsents(db: Db, filter: ConsentFilter): Promise<ConsentRecord[]> {
  return db.$transaction((tx) => revokeConsentsTx(tx, filter));
}
