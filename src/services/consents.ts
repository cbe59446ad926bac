import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { transaction } from '../storage/database.js';
import * as consents from '../storage/consents.js';
import type { ConsentFilter, ConsentRecord } from '../storage/consents.js';
import { recordAudit } from './audit.js';

/**
 * Consent: what a person (account) approved for an app (client), remembered so
 * they are not asked again. Withdrawing it revokes the grant and its tokens.
 */

export type { ConsentRecord, ConsentFilter } from '../storage/consents.js';

/** Remembers what a person approved for an app; `granted` (scopes, APIs) goes in the trail. */
export async function rememberConsent(db: Db, accountId: string, clientId: string, grantId: string, granted: Record<string, unknown> = {}): Promise<void> {
  await transaction(db, async (tx) => {
    await consents.saveConsent(tx, accountId, clientId, grantId);
    await recordAudit(tx, { action: 'consent.granted', target: { type: 'consent', id: `${accountId}/${clientId}` }, details: { accountId, clientId, ...granted } });
  });
}

/** The grant id this account approved for this client, or null. */
export function rememberedGrantId(hot: HotStatements, accountId: string, clientId: string): Promise<string | null> {
  return consents.findConsentGrantId(hot, accountId, clientId);
}

export const listConsents = (db: Db, filter: ConsentFilter) => consents.listConsents(db, filter);

/** Forgets matching consents and revokes their grants (refresh tokens, stored access tokens, codes). */
export function withdrawConsents(db: Db, filter: ConsentFilter): Promise<ConsentRecord[]> {
  return transaction(db, async (tx) => {
    const withdrawn = await consents.deleteConsents(tx, filter);
    for (const c of withdrawn) {
      await recordAudit(tx, { action: 'consent.withdrawn', target: { type: 'consent', id: `${c.accountId}/${c.clientId}` }, details: { accountId: c.accountId, clientId: c.clientId } });
    }
    return withdrawn;
  });
}
