import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { transaction } from '../storage/database.js';
import * as consents from '../storage/consents.js';
import type { ConsentFilter, ConsentRecord } from '../storage/consents.js';

/**
 * Consent: what a person (account) approved for an app (client), remembered so
 * they are not asked again. Withdrawing it revokes the grant and its tokens.
 */

export type { ConsentRecord, ConsentFilter } from '../storage/consents.js';

export function rememberConsent(db: Db, accountId: string, clientId: string, grantId: string): Promise<void> {
  return consents.saveConsent(db, accountId, clientId, grantId);
}

/** The grant id this account approved for this client, or null. */
export function rememberedGrantId(hot: HotStatements, accountId: string, clientId: string): Promise<string | null> {
  return consents.findConsentGrantId(hot, accountId, clientId);
}

export const listConsents = (db: Db, filter: ConsentFilter) => consents.listConsents(db, filter);

/** Forgets matching consents and revokes their grants (refresh tokens, stored access tokens, codes). */
export function withdrawConsents(db: Db, filter: ConsentFilter): Promise<ConsentRecord[]> {
  return transaction(db, (tx) => consents.deleteConsents(tx, filter));
}
