import { NODE_ID } from '../common/node-id.js';
import type { Db, Tx } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import * as accounts from '../storage/accounts.js';
import { ensureLeaseRow, serializeOn } from '../storage/leases.js';
import { recordAudit } from './audit.js';
import { conflict, invalid, notFound } from './errors.js';

/**
 * Console roles of people (accounts): `admin` may change what the console
 * shows, `viewer` may only read it, and an account with no role has no console
 * access. A role is granted and revoked by `gatehouse accounts grant-role` /
 * `revoke-role` (or, once, by CONSOLE_ADMIN_EMAIL: bootstrapAdmin), audited in
 * the transaction of the change. Disabling an account keeps its role but
 * refuses it (consoleAccess); deleting the account removes it with the row.
 */

export const ROLES = ['admin', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);

/** A stored role as the rules know it; anything else stored counts as none. */
export const asRole = (value: string | null | undefined): Role | null => (isRole(value) ? value : null);

export interface RoleChange {
  accountId: string;
  /** false when the account already had that role (or, revoking, none): nothing was changed or recorded */
  changed: boolean;
  role: Role | null;
  previousRole: Role | null;
  /** the account is disabled: a role gives it nothing until it is enabled */
  disabled: boolean;
}

/** What the console gate knows of the person on this request. */
export interface ConsoleAccess {
  accountId: string;
  role: Role;
  name: string | null;
  email: string | null;
}

/** The lease row whose write serializes the changes that must leave an admin (bootstrap, keeping the last admin) across nodes. */
const ROLE_LOCK = 'console-bootstrap';

export interface RoleChangeOptions {
  /**
   * Refuse to take admin from the only account that holds it (the console
   * asks this: its last admin would lock everyone out but the CLI).
   */
  keepAnAdmin?: boolean;
}

/** With keepAnAdmin, the change waits for any other role change that must keep an admin, then refuses to leave none. */
async function keepingAnAdmin(db: Db, options: RoleChangeOptions) {
  if (!options.keepAnAdmin) return async () => {};
  await ensureLeaseRow(db, ROLE_LOCK);
  return async (tx: Tx, account: accounts.AccountRoleState, role: Role | null) => {
    if (account.role !== 'admin' || role === 'admin') return;
    await serializeOn(tx, ROLE_LOCK, NODE_ID);
    if ((await accounts.countAccountsWithRole(tx, 'admin')) <= 1) {
      throw conflict(`account ${account.id} is the only admin: make another account admin first, or use gatehouse accounts on the server`);
    }
  };
}

/**
 * The account an argument names: one containing "@" is an email, matched
 * case-insensitively against the accounts' own emails (none: not_found; more
 * than one: conflict naming them, to use an id instead); anything else is an id.
 */
async function resolveAccount(tx: Tx, accountOrEmail: string): Promise<accounts.AccountRoleState> {
  const arg = accountOrEmail.trim();
  if (!arg) throw invalid([{ path: ['account'], message: 'must be an account id or an email' }]);
  let id = arg;
  if (arg.includes('@')) {
    const ids = await accounts.findAccountIdsByEmail(tx, arg, 11);
    if (!ids.length) throw notFound(`no account with email ${arg}`);
    if (ids.length > 1) {
      const listed = ids.slice(0, 10).join(', ') + (ids.length > 10 ? ', …' : '');
      throw conflict(`${ids.length > 10 ? 'more than 10' : ids.length} accounts have email ${arg} (${listed}): name one by its id`);
    }
    id = ids[0];
  }
  const state = await accounts.findAccountRoleState(tx, id);
  if (!state) throw notFound(`no account with id ${id}`);
  return state;
}

/**
 * Gives an account a console role, replacing the one it had. A disabled
 * account may be given one (it still cannot sign in). Giving the role it
 * already has changes and records nothing.
 */
export async function grantRole(db: Db, accountOrEmail: string, role: string, now: Date = new Date(), options: RoleChangeOptions = {}): Promise<RoleChange> {
  if (!isRole(role)) throw invalid([{ path: ['role'], message: `must be one of ${ROLES.join(', ')}` }]);
  const keep = await keepingAnAdmin(db, options);
  return transaction(db, async (tx) => {
    const account = await resolveAccount(tx, accountOrEmail);
    await keep(tx, account, role);
    const previousRole = asRole(account.role);
    const disabled = account.disabledAt !== null;
    if (account.role === role || !(await accounts.setAccountRole(tx, account.id, role))) {
      return { accountId: account.id, changed: false, role, previousRole: role, disabled };
    }
    await recordAudit(tx, { action: 'account.role_granted', target: { type: 'account', id: account.id }, details: { role, previousRole } }, now);
    return { accountId: account.id, changed: true, role, previousRole, disabled };
  });
}

/** Takes the account's console role away; an account without one is left as it is. */
export async function revokeRole(db: Db, accountOrEmail: string, now: Date = new Date(), options: RoleChangeOptions = {}): Promise<RoleChange> {
  const keep = await keepingAnAdmin(db, options);
  return transaction(db, async (tx) => {
    const account = await resolveAccount(tx, accountOrEmail);
    await keep(tx, account, null);
    const disabled = account.disabledAt !== null;
    if (account.role === null || !(await accounts.setAccountRole(tx, account.id, null))) {
      return { accountId: account.id, changed: false, role: null, previousRole: null, disabled };
    }
    const previousRole = asRole(account.role);
    await recordAudit(tx, { action: 'account.role_revoked', target: { type: 'account', id: account.id }, details: { role: account.role } }, now);
    return { accountId: account.id, changed: true, role: null, previousRole, disabled };
  });
}

/**
 * Whether this account may use the console now, and as what: null for an
 * unknown or disabled account, or one without a role. Read from the database
 * on every call (no cache), so a role revoked or an account disabled on any
 * node is refused on the next request everywhere.
 */
export async function consoleAccess(db: Db, accountId: string): Promise<ConsoleAccess | null> {
  const account = await accounts.findAccountRoleState(db, accountId);
  const role = asRole(account?.role);
  if (!account || account.disabledAt || !role) return null;
  return { accountId: account.id, role, name: account.name, email: account.email };
}


/**
 * The console's first admin: when `adminEmail` (CONSOLE_ADMIN_EMAIL) is set,
 * the account's own email is that one and verified, the account is enabled,
 * and no account holds admin yet, it is made admin (audited, `via: bootstrap`,
 * by whoever the caller's actor is). The conditions are checked again inside a
 * transaction that first writes a lease row, so racing attempts (two accounts
 * with that verified email, two nodes) run one after the other and make one
 * admin at most. Whether it granted admin.
 */
export async function bootstrapAdmin(db: Db, accountId: string, adminEmail: string | undefined, now: Date = new Date()): Promise<boolean> {
  if (!adminEmail) return false;
  const wanted = adminEmail.trim().toLowerCase();
  const eligible = (a: accounts.AccountRoleState | null): a is accounts.AccountRoleState =>
    Boolean(a && !a.disabledAt && a.emailVerified && a.email && a.email.toLowerCase() === wanted && a.role !== 'admin');
  // the common case (an admin exists, or this is someone else) reads and writes nothing more
  if (!eligible(await accounts.findAccountRoleState(db, accountId))) return false;
  if (await accounts.countAccountsWithRole(db, 'admin')) return false;
  await ensureLeaseRow(db, ROLE_LOCK);
  return transaction(db, async (tx) => {
    await serializeOn(tx, ROLE_LOCK, NODE_ID);
    const account = await accounts.findAccountRoleState(tx, accountId);
    if (!eligible(account) || (await accounts.countAccountsWithRole(tx, 'admin'))) return false;
    if (!(await accounts.setAccountRole(tx, accountId, 'admin'))) return false;
    await recordAudit(tx, { action: 'account.role_granted', target: { type: 'account', id: accountId }, details: { role: 'admin', previousRole: asRole(account.role), via: 'bootstrap' } }, now);
    return true;
  });
}
