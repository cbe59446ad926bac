import { randomBytes } from 'node:crypto';
import type { Db } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { transaction } from '../storage/database.js';
import * as accounts from '../storage/accounts.js';
import type { AccountClaims, AccountRecord } from '../storage/accounts.js';
import { UniqueViolationError } from '../storage/errors.js';

/**
 * Accounts: our own stable `sub`, and the upstream identities that sign in to
 * it. The linking rule lives here: a new identity joins an existing account
 * only when linking is on and both sides assert the same *verified* email.
 */

export type { AccountRecord } from '../storage/accounts.js';

/** What an upstream says about the person who signed in (federation/ produces it). */
export interface UpstreamIdentity {
  provider: string;
  /** the upstream's stable id for the person */
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  username: string | null;
  picture: string | null;
  /** the raw profile, kept for the operator */
  raw: Record<string, unknown>;
}

export interface SignInResult {
  account: AccountRecord;
  /** the account was created by this sign-in */
  created: boolean;
  /** the upstream identity was new and joined an existing account by verified email */
  linked: boolean;
}

export const findAccount = (hot: HotStatements, id: string) => accounts.findAccount(hot, id);

/** Our own `sub`: random, opaque, never derived from an upstream id. */
const newAccountId = () => randomBytes(16).toString('base64url');

const normalizeEmail = (email: string | null) => email?.trim().toLowerCase() || null;

/**
 * Claims the account takes from the upstream it signed in with, email included:
 * an email the upstream no longer asserts as verified is not kept.
 */
function claimsFrom(identity: UpstreamIdentity): AccountClaims {
  const verified = Boolean(identity.email && identity.emailVerified);
  return {
    name: identity.name,
    username: identity.username,
    picture: identity.picture,
    email: verified ? normalizeEmail(identity.email) : null,
    emailVerified: verified,
  };
}

/**
 * Finds or creates the account for an upstream identity. A returning identity
 * finds its account; a new one may join an account by verified email (see above);
 * otherwise it gets a new account.
 */
export async function signInWith(db: Db, identity: UpstreamIdentity, options: { linkVerifiedEmails: boolean }): Promise<SignInResult> {
  const email = normalizeEmail(identity.email);
  const stored = { provider: identity.provider, subject: identity.subject, email, emailVerified: identity.emailVerified, profile: identity.raw };
  const claims = claimsFrom(identity);
  const attempt = () =>
    transaction(db, async (tx) => {
      const known = await accounts.findIdentityAccountId(tx, identity.provider, identity.subject);
      // the other side must assert it too: an identity whose upstream said, at its
      // latest sign-in, that this email is verified (never a stale account field)
      const linkTo = !known && options.linkVerifiedEmails && email && identity.emailVerified
        ? await accounts.findAccountIdByVerifiedEmail(tx, email, identity.provider)
        : null;
      const accountId = known ?? linkTo;
      const account = accountId
        ? await accounts.updateAccountClaims(tx, accountId, claims)
        : await accounts.insertAccount(tx, newAccountId(), claims);
      if (known) await accounts.updateIdentity(tx, stored);
      else await accounts.insertIdentity(tx, account.id, stored);
      return { account, created: !accountId, linked: !known && Boolean(linkTo) };
    });
  try {
    return await attempt();
  } catch (err) {
    // Two first sign-ins of one identity raced; the other created it, so find it.
    if (err instanceof UniqueViolationError) return attempt();
    throw err;
  }
}
