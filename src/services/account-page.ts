import type { Db } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import * as accounts from '../storage/accounts.js';
import { deleteSessionsOfAccount } from '../storage/oidc-payloads.js';
import { UniqueViolationError } from '../storage/errors.js';
import { AccountDisabledError, type UpstreamIdentity } from './accounts.js';
import { isBuiltInClient } from './built-in-clients.js';
import { listConsents, type ConsentRecord } from './consents.js';
import { recordAudit } from './audit.js';
import { ServiceError } from './errors.js';

/**
 * The rules behind the self-service account page (/account): what a person sees of their own account, linking
 * another upstream identity, and ending every session of the account.
 */

/** What the account page shows of the person's own account. */
export interface AccountOverview {
  id: string;
  name: string | null;
  username: string | null;
  email: string | null;
  /** the upstream identities that sign in to it, oldest first */
  identities: { provider: string; email: string | null; linkedAt: Date }[];
  /** remembered consents of apps (Gatehouse's own pages are left out) */
  consents: ConsentRecord[];
}

/** The account as its owner sees it; null for an unknown or disabled account (the page then says "signed out"). */
export async function accountOverview(db: Db, accountId: string): Promise<AccountOverview | null> {
  const row = await accounts.findAccountDetails(db, accountId);
  if (!row || row.disabledAt) return null;
  const consents = (await listConsents(db, { accountId })).filter((c) => !isBuiltInClient(c.clientId));
  return {
    id: row.id,
    name: row.name,
    username: row.username,
    email: row.email,
    identities: row.identities.map((i) => ({ provider: i.provider, email: i.email, linkedAt: i.createdAt })),
    consents,
  };
}

/** Linking refused: the upstream identity already signs in to another account. */
export class IdentityOfAnotherAccountError extends ServiceError {
  constructor(readonly provider: string) {
    super('conflict', `this ${provider} identity is already linked to another account`);
    this.name = 'IdentityOfAnotherAccountError';
  }
}

/**
 * Adds an upstream identity to this account, at its owner's request (they
 * just signed in to the upstream from the account page). An identity that
 * already belongs to this account is left as it is (`linked: false`); one that
 * belongs to another account is refused (IdentityOfAnotherAccountError) and
 * nothing changes; an unknown account is not found, a disabled one refused
 * (AccountDisabledError). Records `account.linked` with the door's actor.
 */
export async function linkIdentity(db: Db, accountId: string, identity: UpstreamIdentity): Promise<{ linked: boolean }> {
  const email = identity.email?.trim().toLowerCase() || null;
  const attempt = () =>
    transaction(db, async (tx) => {
      const owner = await accounts.findIdentityAccountId(tx, identity.provider, identity.subject);
      if (owner === accountId) return { linked: false };
      if (owner) throw new IdentityOfAnotherAccountError(identity.provider);
      const state = await accounts.findAccountState(tx, accountId);
      if (!state) throw new ServiceError('not_found', `no account with id ${accountId}`);
      if (state.disabledAt) throw new AccountDisabledError(accountId);
      await accounts.insertIdentity(tx, accountId, {
        provider: identity.provider, subject: identity.subject, email, emailVerified: identity.emailVerified, profile: identity.raw,
      });
      await recordAudit(tx, { action: 'account.linked', target: { type: 'account', id: accountId }, details: { provider: identity.provider, via: 'account_page' } });
      return { linked: true };
    });
  try {
    return await attempt();
  } catch (err) {
    // the same identity was inserted at the same moment (a double submit, or its first sign-in): look again
    if (err instanceof UniqueViolationError) return attempt();
    throw err;
  }
}

/**
 * Signs the person out everywhere: deletes every sign-in session of the
 * account (every browser and device must sign in again). Apps keep the access
 * the person allowed (their grants and tokens), which the page withdraws per
 * app. How many sessions ended.
 */
export function signOutEverywhere(db: Db, accountId: string): Promise<number> {
  return transaction(db, async (tx) => {
    const ended = await deleteSessionsOfAccount(tx, accountId);
    await recordAudit(tx, { action: 'account.signed_out_everywhere', target: { type: 'account', id: accountId }, details: { endedSessions: ended } });
    return ended;
  });
}
