import type { Db } from './database.js';
import { translated } from './errors.js';
import { isStorable } from './text.js';
import type { HotStatements } from './hot-statements.js';

/** Accounts (our own `sub`) and the upstream identities that sign in to them. */

type Accounts = Pick<Db, 'account' | 'federatedIdentity'>;

export interface AccountRecord {
  /** Gatehouse's own stable `sub` */
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  username: string | null;
  picture: string | null;
}

/** The claims an account keeps (everything but its id). */
export type AccountClaims = Omit<AccountRecord, 'id'>;

/** What is stored of an upstream identity. */
export interface IdentityData {
  provider: string;
  /** the upstream's stable id for the person */
  subject: string;
  email: string | null;
  emailVerified: boolean;
  /** the upstream's raw profile (JSON) */
  profile: Record<string, unknown>;
}

const select = { id: true, email: true, emailVerified: true, name: true, username: true, picture: true } as const;

/**
 * On the hot path (every ID token and UserInfo answer): a prepared statement, not Prisma.
 * A disabled account is not found, so oidc-provider refuses anything of it that
 * is still around (a session, a token written by a request that raced the disable).
 */
export async function findAccount(hot: Pick<HotStatements, 'findAccount'>, id: string): Promise<AccountRecord | null> {
  return isStorable(id) ? hot.findAccount(id) : null;
}

/** The account an upstream identity belongs to, or null for an identity never seen. */
export async function findIdentityAccountId(db: Accounts, provider: string, subject: string): Promise<string | null> {
  const identity = await db.federatedIdentity.findUnique({ where: { provider_subject: { provider, subject } }, select: { accountId: true } });
  return identity?.accountId ?? null;
}

/**
 * The oldest account that an identity from another provider holds with this
 * email marked verified by that provider at its latest sign-in.
 */
export async function findAccountIdByVerifiedEmail(db: Accounts, email: string, exceptProvider: string): Promise<string | null> {
  const match = await db.federatedIdentity.findFirst({
    where: { email, emailVerified: true, provider: { not: exceptProvider } },
    orderBy: { createdAt: 'asc' },
    select: { accountId: true },
  });
  return match?.accountId ?? null;
}

/** Attaches a new upstream identity to an account; a second insert of one identity fails with UniqueViolationError. */
export async function insertIdentity(db: Accounts, accountId: string, identity: IdentityData): Promise<void> {
  await translated(db.federatedIdentity.create({ data: { ...identity, accountId, profile: identity.profile as object } }));
}

/** Records what the upstream says now about a known identity. */
export async function updateIdentity(db: Accounts, identity: IdentityData): Promise<void> {
  const { provider, subject, ...data } = identity;
  await db.federatedIdentity.update({ where: { provider_subject: { provider, subject } }, data: { ...data, profile: data.profile as object } });
}

export function updateAccountClaims(db: Pick<Db, 'account'>, id: string, claims: AccountClaims): Promise<AccountRecord> {
  return db.account.update({ where: { id }, data: claims, select });
}

export function insertAccount(db: Pick<Db, 'account'>, id: string, claims: AccountClaims): Promise<AccountRecord> {
  return db.account.create({ data: { id, ...claims }, select });
}

export function listIdentities(db: Pick<Db, 'federatedIdentity'>, accountId: string) {
  return db.federatedIdentity.findMany({ where: { accountId }, select: { provider: true, subject: true, email: true, emailVerified: true } });
}

// ---------------------------------------------------------------- administration (the accounts command)

type Admin = Pick<Db, 'account' | 'federatedIdentity' | 'consent' | 'client' | 'oidcPayload'>;

export interface AccountListFilter {
  /** the account's email or an identity's, as stored (lowercase) */
  email?: string;
  /** accounts with an identity of this upstream */
  provider?: string;
  /** only disabled accounts */
  disabled?: boolean;
  /** the page after this id (ids ascending) */
  after?: string;
  limit: number;
}

export interface AccountSummaryRow extends AccountRecord {
  disabledAt: Date | null;
  role: string | null;
  createdAt: Date;
  providers: string[];
}

const adminSelect = { ...select, disabledAt: true, role: true, createdAt: true } as const;

/** Accounts by id, ascending, one page. Text no database stores matches nothing. */
export async function listAccounts(db: Admin, f: AccountListFilter): Promise<AccountSummaryRow[]> {
  if (![f.email, f.provider, f.after].every((v) => v === undefined || isStorable(v))) return [];
  const rows = await db.account.findMany({
    where: {
      ...(f.email !== undefined ? { OR: [{ email: f.email }, { identities: { some: { email: f.email } } }] } : {}),
      ...(f.provider !== undefined ? { identities: { some: { provider: f.provider } } } : {}),
      ...(f.disabled ? { disabledAt: { not: null } } : {}),
      ...(f.after !== undefined ? { id: { gt: f.after } } : {}),
    },
    orderBy: { id: 'asc' },
    take: f.limit,
    select: { ...adminSelect, identities: { select: { provider: true }, orderBy: { provider: 'asc' } } },
  });
  return rows.map(({ identities, ...account }) => ({ ...account, providers: [...new Set(identities.map((i) => i.provider))] }));
}

export interface AccountDetailRow extends AccountRecord {
  disabledAt: Date | null;
  role: string | null;
  createdAt: Date;
  updatedAt: Date;
  identities: { provider: string; subject: string; email: string | null; emailVerified: boolean; createdAt: Date; updatedAt: Date; profile: unknown }[];
  consents: { clientId: string; clientName: string | null; grantId: string; createdAt: Date; updatedAt: Date }[];
}

/** One account with its identities and remembered consents (and the names of their clients), or null. */
export async function findAccountDetails(db: Admin, id: string): Promise<AccountDetailRow | null> {
  if (!isStorable(id)) return null;
  const row = await db.account.findUnique({
    where: { id },
    select: {
      ...adminSelect,
      updatedAt: true,
      identities: { select: { provider: true, subject: true, email: true, emailVerified: true, createdAt: true, updatedAt: true, profile: true }, orderBy: [{ createdAt: 'asc' }, { provider: 'asc' }] },
      consents: { select: { clientId: true, grantId: true, createdAt: true, updatedAt: true }, orderBy: { clientId: 'asc' } },
    },
  });
  if (!row) return null;
  const clients = row.consents.length
    ? await db.client.findMany({ where: { clientId: { in: row.consents.map((c) => c.clientId) } }, select: { clientId: true, name: true } })
    : [];
  const names = new Map(clients.map((c) => [c.clientId, c.name]));
  return { ...row, consents: row.consents.map((c) => ({ ...c, clientName: names.get(c.clientId) ?? null })) };
}

export interface SessionRow {
  id: string;
  expiresAt: Date | null;
  payload: Record<string, unknown>;
}

/** The account's sessions that have not expired at `now`: how many, and the `limit` that expire last. */
export async function liveSessionsOfAccount(db: Pick<Db, 'oidcPayload'>, accountId: string, now: Date, limit: number): Promise<{ count: number; latest: SessionRow[] }> {
  if (!isStorable(accountId)) return { count: 0, latest: [] };
  const where = { type: 'Session', accountId, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] };
  const [count, latest] = await Promise.all([
    db.oidcPayload.count({ where }),
    db.oidcPayload.findMany({ where, orderBy: { expiresAt: 'desc' }, take: limit, select: { id: true, expiresAt: true, payload: true } }),
  ]);
  return { count, latest: latest as SessionRow[] };
}

/** The account's state for a rule that changes it (inside its transaction), or null. */
export async function findAccountState(db: Pick<Db, 'account'>, id: string): Promise<{ id: string; disabledAt: Date | null } | null> {
  if (!isStorable(id)) return null;
  return db.account.findUnique({ where: { id }, select: { id: true, disabledAt: true } });
}

/** Sets or clears disabledAt, only when it is not already so: whether this call changed it. */
export async function setAccountDisabled(db: Pick<Db, 'account'>, id: string, disabledAt: Date | null): Promise<boolean> {
  if (!isStorable(id)) return false;
  const { count } = await db.account.updateMany({
    where: { id, disabledAt: disabledAt ? null : { not: null } },
    data: { disabledAt },
  });
  return count === 1;
}

/** How many identities and consents the account has. */
export async function countAccountLinks(db: Pick<Db, 'federatedIdentity' | 'consent'>, id: string): Promise<{ identities: number; consents: number }> {
  // one after the other: inside a transaction the statements queue anyway
  const identities = await db.federatedIdentity.count({ where: { accountId: id } });
  const consents = await db.consent.count({ where: { accountId: id } });
  return { identities, consents };
}

/** Deletes the account; its identities and consents go with it (ON DELETE CASCADE). Whether it existed. */
export async function deleteAccountRow(db: Pick<Db, 'account'>, id: string): Promise<boolean> {
  if (!isStorable(id)) return false;
  return (await db.account.deleteMany({ where: { id } })).count === 1;
}

// ---------------------------------------------------------------- console roles

/** What the console's rules read of an account: its state, role and who it is. */
export interface AccountRoleState {
  id: string;
  disabledAt: Date | null;
  role: string | null;
  name: string | null;
  email: string | null;
  emailVerified: boolean;
}

const roleStateSelect = { id: true, disabledAt: true, role: true, name: true, email: true, emailVerified: true } as const;

/** The account's state, role and identity, or null. */
export async function findAccountRoleState(db: Pick<Db, 'account'>, id: string): Promise<AccountRoleState | null> {
  if (!isStorable(id)) return null;
  return db.account.findUnique({ where: { id }, select: roleStateSelect });
}

/**
 * The ids of the accounts whose own email is this one, ignoring case (at most
 * `limit`, ids ascending). Sign-in stores emails lowercased; lower() in SQL also
 * finds one stored otherwise (ASCII letters on SQLite). For the CLI and the
 * console, not a request's hot path: it reads the whole table.
 */
export async function findAccountIdsByEmail(db: Pick<Db, '$queryRaw'>, email: string, limit = 10): Promise<string[]> {
  if (!isStorable(email)) return [];
  const lower = email.toLowerCase();
  const rows = await db.$queryRaw<{ id: string }[]>`SELECT "id" FROM "Account" WHERE "email" = ${lower} OR lower("email") = ${lower} ORDER BY "id" LIMIT ${limit}`;
  return rows.map((r) => r.id);
}

/** Sets the account's role (null: none) only when it differs: whether this call changed it. */
export async function setAccountRole(db: Pick<Db, 'account'>, id: string, role: string | null): Promise<boolean> {
  if (!isStorable(id)) return false;
  const { count } = await db.account.updateMany({
    where: role === null ? { id, role: { not: null } } : { id, OR: [{ role: null }, { role: { not: role } }] },
    data: { role },
  });
  return count === 1;
}

/** How many accounts hold this role. */
export function countAccountsWithRole(db: Pick<Db, 'account'>, role: string): Promise<number> {
  return db.account.count({ where: { role } });
}
