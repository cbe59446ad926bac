import { randomBytes } from 'node:crypto';
import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { withActor } from '../../src/services/audit.js';
import { deleteAccount, disableAccount, enableAccount, showAccount } from '../../src/services/accounts.js';
import { bootstrapAdmin, consoleAccess, grantRole, revokeRole } from '../../src/services/roles.js';

/** The console roles' rules (services/roles.ts) on each database. */

describe.each(databaseKinds())('console roles on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;
  const db = () => database.prisma;

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  /** A new account, as sign-in stores one unless `email` says otherwise. */
  async function account(over: { email?: string | null; emailVerified?: boolean; name?: string; role?: string | null } = {}): Promise<string> {
    const id = `acct-${randomBytes(6).toString('hex')}`;
    await db().account.create({
      data: { id, email: over.email === undefined ? `${id}@example.com` : over.email, emailVerified: over.emailVerified ?? true, name: over.name ?? `Person ${id}`, role: over.role ?? null },
    });
    return id;
  }
  const eventsOf = (id: string) =>
    db().auditEvent.findMany({ where: { targetType: 'account', targetId: id }, orderBy: { id: 'asc' }, select: { action: true, actorType: true, actorId: true, address: true, details: true, outcome: true } });
  const roleOf = async (id: string) => (await db().account.findUnique({ where: { id }, select: { role: true } }))?.role;

  it('grants a role by id, audited with the actor and the previous role; the same role again changes and records nothing', async () => {
    const ada = await account({ name: 'Ada' });
    const first = await withActor({ type: 'cli' }, () => grantRole(db(), ada, 'viewer'));
    expect(first).toEqual({ accountId: ada, changed: true, role: 'viewer', previousRole: null, disabled: false });
    expect(await roleOf(ada)).toBe('viewer');
    expect(await withActor({ type: 'cli' }, () => grantRole(db(), ada, 'viewer'))).toMatchObject({ changed: false, role: 'viewer' });
    const promoted = await withActor({ type: 'account', id: 'boss', address: '203.0.113.9' }, () => grantRole(db(), ada, 'admin'));
    expect(promoted).toMatchObject({ changed: true, role: 'admin', previousRole: 'viewer' });
    expect(await eventsOf(ada)).toEqual([
      { action: 'account.role_granted', actorType: 'cli', actorId: null, address: null, details: { role: 'viewer', previousRole: null }, outcome: 'success' },
      { action: 'account.role_granted', actorType: 'account', actorId: 'boss', address: '203.0.113.9', details: { role: 'admin', previousRole: 'viewer' }, outcome: 'success' },
    ]);
    expect(await consoleAccess(db(), ada)).toEqual({ accountId: ada, role: 'admin', name: 'Ada', email: `${ada}@example.com` });
    // the account's details carry it (accounts show, the admin API)
    expect((await showAccount(db(), ada)).role).toBe('admin');
  });

  it('revokes a role, audited with the role it had; revoking none changes and records nothing', async () => {
    const bob = await account({ role: 'admin' });
    expect(await withActor({ type: 'admin-client', id: 'ops' }, () => revokeRole(db(), bob))).toEqual({ accountId: bob, changed: true, role: null, previousRole: 'admin', disabled: false });
    expect(await roleOf(bob)).toBeNull();
    expect(await consoleAccess(db(), bob)).toBeNull();
    expect(await revokeRole(db(), bob)).toMatchObject({ changed: false, role: null });
    expect(await eventsOf(bob)).toEqual([
      { action: 'account.role_revoked', actorType: 'admin-client', actorId: 'ops', address: null, details: { role: 'admin' }, outcome: 'success' },
    ]);
  });

  it('keeps an admin when asked (the console): the only admin cannot lose the role, one of two can; without the option (the CLI) it can', async () => {
    await db().account.updateMany({ where: { role: 'admin' }, data: { role: null } });
    const only = await account({ role: 'admin' });
    const keep = { keepAnAdmin: true };
    await expect(revokeRole(db(), only, undefined, keep)).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining('only admin') });
    await expect(grantRole(db(), only, 'viewer', undefined, keep)).rejects.toMatchObject({ code: 'conflict' });
    expect(await roleOf(only)).toBe('admin');
    expect(await eventsOf(only)).toEqual([]);
    // giving the only admin admin again, or another account a role, is no demotion
    expect(await grantRole(db(), only, 'admin', undefined, keep)).toMatchObject({ changed: false });
    const second = await account({ role: 'admin' });
    expect(await grantRole(db(), second, 'viewer', undefined, keep)).toMatchObject({ changed: true, role: 'viewer' });
    await expect(revokeRole(db(), only, undefined, keep)).rejects.toMatchObject({ code: 'conflict' });
    expect(await grantRole(db(), second, 'admin')).toMatchObject({ changed: true });
    expect(await revokeRole(db(), only, undefined, keep)).toMatchObject({ changed: true, previousRole: 'admin' });
    // the CLI's operator may leave none
    expect(await revokeRole(db(), second)).toMatchObject({ changed: true });
    expect(await db().account.count({ where: { role: 'admin' } })).toBe(0);
  });

  it('finds the account by email in any case; no match is not_found, several is a conflict naming them', async () => {
    const cy = await account({ email: 'cy@example.com' });
    expect(await grantRole(db(), 'CY@Example.COM', 'viewer')).toMatchObject({ accountId: cy, changed: true });
    expect(await revokeRole(db(), ' cy@example.com ')).toMatchObject({ accountId: cy, changed: true });

    await expect(grantRole(db(), 'nobody@example.com', 'admin')).rejects.toMatchObject({ code: 'not_found', message: 'no account with email nobody@example.com' });
    await expect(revokeRole(db(), 'nobody@example.com')).rejects.toMatchObject({ code: 'not_found' });

    // two accounts with one email (linking off), one stored in another case
    const d1 = await account({ email: 'dup@example.com' });
    const d2 = await account({ email: 'Dup@Example.com' });
    const ids = [d1, d2].sort();
    await expect(grantRole(db(), 'DUP@example.com', 'admin')).rejects.toMatchObject({
      code: 'conflict', message: `2 accounts have email DUP@example.com (${ids.join(', ')}): name one by its id`,
    });
    await expect(revokeRole(db(), 'dup@example.com')).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining(ids.join(', ')) });
    // by id, either one is fine
    expect(await grantRole(db(), d2, 'viewer')).toMatchObject({ accountId: d2, changed: true });
    expect(await roleOf(d1)).toBeNull();
    expect(await eventsOf(d1)).toEqual([]);
  });

  it('refuses a role that is not one and an unknown account, changing and recording nothing', async () => {
    const eve = await account();
    const before = await db().auditEvent.count();
    await expect(grantRole(db(), eve, 'root')).rejects.toMatchObject({ code: 'invalid', problems: [{ path: ['role'], message: 'must be one of admin, viewer' }] });
    await expect(grantRole(db(), eve, 'Admin')).rejects.toMatchObject({ code: 'invalid' });
    await expect(grantRole(db(), 'no-such-account', 'admin')).rejects.toMatchObject({ code: 'not_found', message: 'no account with id no-such-account' });
    await expect(revokeRole(db(), 'no-such-account')).rejects.toMatchObject({ code: 'not_found' });
    await expect(grantRole(db(), 'a\u0000b', 'admin')).rejects.toMatchObject({ code: 'not_found' });
    await expect(grantRole(db(), '  ', 'admin')).rejects.toMatchObject({ code: 'invalid', problems: [{ path: ['account'] }] });
    expect(await roleOf(eve)).toBeNull();
    expect(await db().auditEvent.count()).toBe(before);
  });

  it('consoleAccess is null for an unknown, disabled or role-less account, read live', async () => {
    expect(await consoleAccess(db(), 'no-such-account')).toBeNull();
    expect(await consoleAccess(db(), 'a\u0000b')).toBeNull();
    const fay = await account({ name: 'Fay' });
    expect(await consoleAccess(db(), fay)).toBeNull();
    await grantRole(db(), fay, 'viewer');
    expect(await consoleAccess(db(), fay)).toMatchObject({ accountId: fay, role: 'viewer', name: 'Fay' });

    // disabled: refused at once, role kept; a role may still be granted (it gives nothing until enabled)
    await disableAccount(db(), fay);
    expect(await consoleAccess(db(), fay)).toBeNull();
    expect(await grantRole(db(), fay, 'admin')).toMatchObject({ changed: true, role: 'admin', disabled: true });
    expect(await consoleAccess(db(), fay)).toBeNull();
    await enableAccount(db(), fay);
    expect(await consoleAccess(db(), fay)).toMatchObject({ role: 'admin' });

    // a change made elsewhere (another node, the CLI) is seen on the next call
    await db().account.update({ where: { id: fay }, data: { role: null } });
    expect(await consoleAccess(db(), fay)).toBeNull();
    // a value that is not a role gives no access
    await db().account.update({ where: { id: fay }, data: { role: 'superuser' } });
    expect(await consoleAccess(db(), fay)).toBeNull();
  });

  it('deleting an account removes its role with it', async () => {
    const gus = await account({ role: 'admin' });
    await deleteAccount(db(), gus);
    expect(await consoleAccess(db(), gus)).toBeNull();
    expect(await db().account.count({ where: { id: gus } })).toBe(0);
  });

  describe('bootstrapAdmin', () => {
    // every case starts with no admin anywhere
    beforeEach(() => db().account.updateMany({ where: { role: 'admin' }, data: { role: null } }));

    it('makes the first admin of the account whose verified email is CONSOLE_ADMIN_EMAIL, audited with the actor', async () => {
      const root = await account({ email: 'root@example.com', role: 'viewer' });
      const actor = { type: 'account' as const, id: root, address: '198.51.100.7' };
      expect(await withActor(actor, () => bootstrapAdmin(db(), root, 'ROOT@example.com'))).toBe(true);
      expect(await consoleAccess(db(), root)).toMatchObject({ role: 'admin' });
      expect(await eventsOf(root)).toEqual([
        { action: 'account.role_granted', actorType: 'account', actorId: root, address: '198.51.100.7', details: { role: 'admin', previousRole: 'viewer', via: 'bootstrap' }, outcome: 'success' },
      ]);
      // once an admin exists: nothing, for this account or another with that email
      const twin = await account({ email: 'root@example.com' });
      expect(await bootstrapAdmin(db(), root, 'root@example.com')).toBe(false);
      expect(await bootstrapAdmin(db(), twin, 'root@example.com')).toBe(false);
      expect(await roleOf(twin)).toBeNull();
      expect(await eventsOf(root)).toHaveLength(1);
    });

    it('does nothing without the setting, for another email, an unverified or missing email, a disabled or unknown account', async () => {
      const before = await db().auditEvent.count();
      const verified = await account({ email: 'boss@example.com' });
      const unverified = await account({ email: 'boss@example.com', emailVerified: false });
      const noEmail = await account({ email: null });
      const disabled = await account({ email: 'boss@example.com' });
      await db().account.update({ where: { id: disabled }, data: { disabledAt: new Date() } });
      expect(await bootstrapAdmin(db(), verified, undefined)).toBe(false);
      expect(await bootstrapAdmin(db(), verified, '')).toBe(false);
      expect(await bootstrapAdmin(db(), verified, 'other@example.com')).toBe(false);
      expect(await bootstrapAdmin(db(), unverified, 'boss@example.com')).toBe(false);
      expect(await bootstrapAdmin(db(), noEmail, 'boss@example.com')).toBe(false);
      expect(await bootstrapAdmin(db(), disabled, 'boss@example.com')).toBe(false);
      expect(await bootstrapAdmin(db(), 'no-such-account', 'boss@example.com')).toBe(false);
      expect(await db().account.count({ where: { role: 'admin' } })).toBe(0);
      expect(await db().auditEvent.count()).toBe(before);
    });

    it('does nothing once an admin exists, even one granted by the CLI', async () => {
      await grantRole(db(), await account(), 'admin');
      const late = await account({ email: 'late@example.com' });
      expect(await bootstrapAdmin(db(), late, 'late@example.com')).toBe(false);
      expect(await roleOf(late)).toBeNull();
    });

    it('makes one admin at most when accounts with that verified email race', async () => {
      const racers = await Promise.all([1, 2, 3, 4].map(() => account({ email: 'race@example.com' })));
      const results = await Promise.all(racers.map((id) => bootstrapAdmin(db(), id, 'race@example.com')));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await db().account.count({ where: { role: 'admin' } })).toBe(1);
      const winner = racers[results.indexOf(true)];
      expect((await db().auditEvent.findMany({ where: { action: 'account.role_granted', targetId: { in: racers } } })).map((e) => e.targetId)).toEqual([winner]);
    });
  });
});
