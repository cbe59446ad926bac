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

/** On the hot path (every ID token and UserInfo answer): a prepared statement, not Prisma. */
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
