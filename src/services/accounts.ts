import { randomBytes } from 'node:crypto';
import type { Db, Tx } from '../storage/database.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { transaction } from '../storage/database.js';
import * as accounts from '../storage/accounts.js';
import type { AccountClaims, AccountRecord } from '../storage/accounts.js';
import { deletePayloadsOfAccount } from '../storage/oidc-payloads.js';
import { deleteConsents } from '../storage/consents.js';
import { UniqueViolationError } from '../storage/errors.js';
import { forgetAddressesOf, recordAudit } from './audit.js';
import { invalid, notFound, ServiceError, type Problem } from './errors.js';
import { asRole, type Role } from './roles.js';

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

/** The account's claims for tokens and UserInfo; null for an unknown or disabled account. */
export const findAccount = (hot: HotStatements, id: string) => accounts.findAccount(hot, id);

/**
 * A sign-in that found a disabled account: refused, and nothing stored of it
 * (neither the new claims nor a newly linked identity).
 */
export class AccountDisabledError extends ServiceError {
  constructor(readonly accountId: string) {
    super('conflict', 'this account is disabled');
    this.name = 'AccountDisabledError';
  }
}

/** Our own `sub`: random, opaque, never derived from an upstream id. */
/**
 * Our own `sub`: 128 random bits, base64url, never starting with "-" (an id
 * that did would read as an option: `gatehouse accounts show -x…`).
 */
function newAccountId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

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
 * otherwise it gets a new account. A disabled account throws AccountDisabledError.
 */
export async function signInWith(
  db: Db,
  identity: UpstreamIdentity,
  options: { linkVerifiedEmails: boolean; hot?: Pick<HotStatements, 'updateReturningIdentity'> },
): Promise<SignInResult> {
  const email = normalizeEmail(identity.email);
  const stored = { provider: identity.provider, subject: identity.subject, email, emailVerified: identity.emailVerified, profile: identity.raw };
  const claims = claimsFrom(identity);
  // a returning identity (almost every sign-in): one statement, no transaction
  const returning = options.hot ? await options.hot.updateReturningIdentity(stored, claims, new Date()) : null;
  if (returning) {
    if (!returning.account) throw new AccountDisabledError(returning.accountId);
    return { account: returning.account, created: false, linked: false };
  }
  const attempt = () =>
    transaction(db, async (tx) => {
      const known = await accounts.findIdentityAccountId(tx, identity.provider, identity.subject);
      // the other side must assert it too: an identity whose upstream said, at its
      // latest sign-in, that this email is verified (never a stale account field)
      const linkTo = !known && options.linkVerifiedEmails && email && identity.emailVerified
        ? await accounts.findAccountIdByVerifiedEmail(tx, email, identity.provider)
        : null;
      const accountId = known ?? linkTo;
      // a disabled account signs in to nothing, by its own identity or by linking a new one
      if (accountId && (await accounts.findAccountState(tx, accountId))?.disabledAt) throw new AccountDisabledError(accountId);
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

// ---------------------------------------------------------------- administration (gatehouse accounts)

/** What an admin sees of an account in a listing. */
export interface AccountSummary extends AccountRecord {
  disabled: boolean;
  disabledAt: Date | null;
  /** the console role: admin, viewer, or null (no console access) */
  role: Role | null;
  createdAt: Date;
  /** the upstreams it signs in with */
  providers: string[];
}

export interface AccountDetails extends Omit<AccountSummary, 'providers'> {
  updatedAt: Date;
  /** the upstream identities that sign in to it; `profile` is the upstream's, minus anything token-like */
  identities: { provider: string; subject: string; email: string | null; emailVerified: boolean; linkedAt: Date; updatedAt: Date; profile: Record<string, unknown> }[];
  /** remembered consents */
  consents: { clientId: string; clientName: string | null; grantedAt: Date; updatedAt: Date }[];
  /** sessions that have not expired: how many, and the ones that expire last (never their ids: a session id is its cookie) */
  sessions: { active: number; latest: { expiresAt: Date | null; signedInAt: Date | null; clients: string[] }[] };
}

export interface AccountListQuery {
  email?: string;
  provider?: string;
  /** only disabled accounts */
  disabled?: boolean;
  /** the page after this account id */
  after?: string;
  /** 1 to 1000, default 100 */
  limit?: number;
}

/** How many sessions `showAccount` lists. */
export const SHOWN_SESSIONS = 5;

const noAccount = (id: string) => notFound(`no account with id ${id}`);

/**
 * Names in an upstream's raw profile that would carry a credential or a value
 * bound to one (token hashes, nonces, session ids): never shown.
 */
const TOKEN_LIKE = /token|secret|password|assertion|verifier|private|cookie|authorization|session|^code$|_hash$|^nonce$|^sid$/i;

function withoutTokens(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTokens);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([name]) => !TOKEN_LIKE.test(name)).map(([name, v]) => [name, withoutTokens(v)]));
  }
  return value;
}

const summary = ({ providers, ...a }: accounts.AccountSummaryRow): AccountSummary => ({
  id: a.id, email: a.email, emailVerified: a.emailVerified, name: a.name, username: a.username, picture: a.picture,
  disabled: a.disabledAt !== null, disabledAt: a.disabledAt, role: asRole(a.role), createdAt: a.createdAt, providers,
});

/** Accounts by id, one page; `after` the last id of the previous page. */
export async function listAccounts(db: Db, q: AccountListQuery = {}): Promise<AccountSummary[]> {
  const problems: Problem[] = [];
  const limit = q.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) problems.push({ path: ['limit'], message: 'must be a whole number from 1 to 1000' });
  if (q.email !== undefined && !normalizeEmail(q.email)) problems.push({ path: ['email'], message: 'must not be empty' });
  if (q.provider !== undefined && !q.provider.trim()) problems.push({ path: ['provider'], message: 'must not be empty' });
  if (problems.length) throw invalid(problems);
  const rows = await accounts.listAccounts(db, {
    email: q.email === undefined ? undefined : normalizeEmail(q.email)!,
    provider: q.provider?.trim(),
    disabled: q.disabled,
    after: q.after,
    limit,
  });
  return rows.map(summary);
}

const fromSeconds = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? new Date(v * 1000) : null);

/** One account: its claims, state, identities, consents and live sessions. */
export async function showAccount(db: Db, id: string, now: Date = new Date()): Promise<AccountDetails> {
  const row = await accounts.findAccountDetails(db, id);
  if (!row) throw noAccount(id);
  const sessions = await accounts.liveSessionsOfAccount(db, id, now, SHOWN_SESSIONS);
  return {
    id: row.id, email: row.email, emailVerified: row.emailVerified, name: row.name, username: row.username, picture: row.picture,
    disabled: row.disabledAt !== null, disabledAt: row.disabledAt, role: asRole(row.role), createdAt: row.createdAt, updatedAt: row.updatedAt,
    identities: row.identities.map((i) => ({
      provider: i.provider, subject: i.subject, email: i.email, emailVerified: i.emailVerified, linkedAt: i.createdAt, updatedAt: i.updatedAt,
      profile: (withoutTokens(i.profile ?? {}) ?? {}) as Record<string, unknown>,
    })),
    consents: row.consents.map((c) => ({ clientId: c.clientId, clientName: c.clientName, grantedAt: c.createdAt, updatedAt: c.updatedAt })),
    sessions: {
      active: sessions.count,
      latest: sessions.latest.map((s) => ({
        expiresAt: s.expiresAt,
        signedInAt: fromSeconds(s.payload.loginTs),
        clients: Object.keys((s.payload.authorizations as Record<string, unknown> | undefined) ?? {}).sort(),
      })),
    },
  };
}

export interface AccountChange {
  id: string;
  /** false when the account already was in that state: nothing was changed */
  changed: boolean;
  disabledAt: Date | null;
  /** artifacts ended (sessions, grants, codes, stored tokens) */
  endedArtifacts: number;
}

/**
 * Ends everything of an account, inside the caller's transaction: every
 * artifact that names it (sessions, grants, codes, stored tokens), and its
 * remembered consents with whatever is still stored under their grants (so no
 * app is listed as having access to a grant that is gone). How many artifacts
 * named it.
 */
async function endArtifacts(tx: Tx, id: string): Promise<number> {
  const ended = await deletePayloadsOfAccount(tx, id);
  await deleteConsents(tx, { accountId: id });
  return ended;
}

/**
 * Disables an account and, in the same transaction, ends everything of it:
 * sessions, grants, codes and stored tokens (introspection then says inactive,
 * refresh is refused, the next authorization asks to sign in). While disabled,
 * sign-in is refused (signInWith) and the hot path finds no such account, so
 * anything that raced the disable is refused too. JWT access tokens are not
 * stored: an API that validates them itself accepts them until they expire.
 * An account already disabled is left as it is.
 */
export function disableAccount(db: Db, id: string, now: Date = new Date()): Promise<AccountChange> {
  return transaction(db, async (tx) => {
    if (!(await accounts.setAccountDisabled(tx, id, now))) {
      const state = await accounts.findAccountState(tx, id);
      if (!state) throw noAccount(id);
      return { id, changed: false, disabledAt: state.disabledAt, endedArtifacts: 0 };
    }
    const endedArtifacts = await endArtifacts(tx, id);
    await recordAudit(tx, { action: 'account.disabled', target: { type: 'account', id }, details: { endedArtifacts } }, now);
    return { id, changed: true, disabledAt: now, endedArtifacts };
  });
}

/** Enables a disabled account: the person may sign in again (what the disable ended stays ended). */
export function enableAccount(db: Db, id: string, now: Date = new Date()): Promise<AccountChange> {
  return transaction(db, async (tx) => {
    if (!(await accounts.setAccountDisabled(tx, id, null))) {
      if (!(await accounts.findAccountState(tx, id))) throw noAccount(id);
      return { id, changed: false, disabledAt: null, endedArtifacts: 0 };
    }
    await recordAudit(tx, { action: 'account.enabled', target: { type: 'account', id } }, now);
    return { id, changed: true, disabledAt: null, endedArtifacts: 0 };
  });
}

export interface AccountDeletion {
  id: string;
  identities: number;
  consents: number;
  endedArtifacts: number;
}

/**
 * The right to erasure: deletes the account, its upstream identities and
 * remembered consents (ON DELETE CASCADE), and every artifact of it (as
 * disable ends them), in one transaction.
 *
 * The audit trail is kept: it is the record of what happened. It holds no
 * personal data of the account to erase: the rows about a person (sign-ins,
 * account created or linked, consents, token exchange, refresh-token reuse)
 * name the account only by its id, the random `sub`, which identifies no one
 * once the account is gone, and otherwise hold client ids and provider names;
 * none records an email, name or username. The client addresses recorded
 * with them are removed. The `account.deleted` row holds counts only.
 */
export function deleteAccount(db: Db, id: string, now: Date = new Date()): Promise<AccountDeletion> {
  return transaction(db, async (tx) => {
    if (!(await accounts.findAccountState(tx, id))) throw noAccount(id);
    const { identities, consents } = await accounts.countAccountLinks(tx, id);
    const endedArtifacts = await endArtifacts(tx, id);
    await accounts.deleteAccountRow(tx, id);
    await forgetAddressesOf(tx, id);
    await recordAudit(tx, { action: 'account.deleted', target: { type: 'account', id }, details: { identities, consents, endedArtifacts } }, now);
    return { id, identities, consents, endedArtifacts };
  });
}
