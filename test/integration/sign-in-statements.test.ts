import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { AccountDisabledError, disableAccount, signInWith } from '../../src/services/accounts.js';
import { recordAudit, recordAuditHot, withActor } from '../../src/services/audit.js';
import { createWebhook } from '../../src/services/webhooks/registry.js';
import { installWebhookOutbox } from '../../src/services/webhooks/outbox.js';
import type { UpstreamProfile } from '../../src/federation/upstream.js';

// the webhooks' outbox, subscribed to the audit trail as the server and the CLI do
installWebhookOutbox();

const profile = (over: Partial<UpstreamProfile>): UpstreamProfile => ({
  provider: 'github', subject: '1', email: null, emailVerified: false, name: null, username: null, picture: null, raw: {}, ...over,
});

/**
 * A returning person's sign-in without Prisma (the hot statements of
 * storage/hot-account-statements.ts): the same rows as the Prisma path writes,
 * on both databases.
 */
describe.each(databaseKinds())('the sign-in statements on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  const rowsOf = async (subject: string) => {
    const identity = await database.prisma.federatedIdentity.findUniqueOrThrow({ where: { provider_subject: { provider: 'github', subject } } });
    const account = await database.prisma.account.findUniqueOrThrow({ where: { id: identity.accountId } });
    return { identity, account };
  };

  it('updates a returning identity and its account as the Prisma path does, in one statement', async () => {
    const before = { email: 'Ada@Example.com', emailVerified: true, name: 'Ada', username: 'ada', raw: { id: 1, login: 'ada' } };
    const after = { email: 'Ada.L@Example.com', emailVerified: true, name: 'Ada L.', username: 'adal', picture: 'https://example.com/a.png', raw: { id: 1, login: 'adal', nested: ['é', '\u{1F600}'] } };
    // two people who both come back with new details: one through each path
    const viaPrisma = await signInWith(database.prisma, profile({ subject: 'p', ...before }), { linkVerifiedEmails: false });
    const viaHot = await signInWith(database.prisma, profile({ subject: 'h', ...before }), { linkVerifiedEmails: false });
    const t0 = Date.now();
    const prismaAgain = await signInWith(database.prisma, profile({ subject: 'p', ...after }), { linkVerifiedEmails: false });
    const answered: unknown[] = [];
    const hot = { updateReturningIdentity: async (...args: Parameters<Database['hot']['updateReturningIdentity']>) => {
      answered.push(await database.hot.updateReturningIdentity(...args));
      return answered.at(-1) as Awaited<ReturnType<Database['hot']['updateReturningIdentity']>>;
    } };
    const hotAgain = await signInWith(database.prisma, profile({ subject: 'h', ...after }), { linkVerifiedEmails: false, hot });
    // the statement answered it (the Prisma path did not run)
    expect(answered).toEqual([{ accountId: viaHot.account.id, account: hotAgain.account }]);
    expect(hotAgain).toEqual({ ...prismaAgain, account: { ...prismaAgain.account, id: viaHot.account.id } });
    expect(hotAgain.account.id).toBe(viaHot.account.id);
    const p = await rowsOf('p');
    const h = await rowsOf('h');
    const { accountId: _a, subject: _s, createdAt: _c, updatedAt: identityUpdated, ...identity } = h.identity;
    expect(identity).toEqual({ provider: 'github', email: 'ada.l@example.com', emailVerified: true, profile: after.raw });
    expect({ ...h.identity, accountId: '', subject: '', createdAt: 0, updatedAt: 0 }).toEqual({ ...p.identity, accountId: '', subject: '', createdAt: 0, updatedAt: 0 });
    expect({ ...h.account, id: '', createdAt: 0, updatedAt: 0 }).toEqual({ ...p.account, id: '', createdAt: 0, updatedAt: 0 });
    // the update time moved, and Prisma reads it as a time
    for (const t of [identityUpdated, h.account.updatedAt]) expect(t.getTime()).toBeGreaterThanOrEqual(t0 - 1000);
  });

  it('refuses a disabled account and changes nothing of it', async () => {
    const { account } = await signInWith(database.prisma, profile({ subject: 'd', name: 'Before' }), { linkVerifiedEmails: false });
    await disableAccount(database.prisma, account.id);
    const before = await rowsOf('d');
    await expect(signInWith(database.prisma, profile({ subject: 'd', name: 'After', raw: { changed: true } }), { linkVerifiedEmails: false, hot: database.hot }))
      .rejects.toEqual(new AccountDisabledError(account.id));
    expect(await rowsOf('d')).toEqual(before);
  });

  it('leaves a first sign-in to the Prisma path, which creates the account', async () => {
    const first = await signInWith(database.prisma, profile({ subject: 'new-one', name: 'New' }), { linkVerifiedEmails: false, hot: database.hot });
    expect(first).toMatchObject({ created: true, linked: false, account: { name: 'New' } });
    expect((await rowsOf('new-one')).account.id).toBe(first.account.id);
  });

  it('records events with their webhook outbox rows exactly as the Prisma path does', async () => {
    const hook = (events: string[]) => createWebhook(database.prisma, { url: 'https://hooks.example.com/x', events }, undefined);
    const all = await hook(['*']);
    const signIns = await hook(['sign_in.succeeded']);
    await hook(['client.created']);
    const off = await hook(['sign_in.succeeded']);
    await database.prisma.webhook.update({ where: { id: off.webhook.id }, data: { disabled: true } });
    const at = new Date(Date.UTC(2031, 4, 5, 6, 7, 8, 9));
    const input = { action: 'sign_in.succeeded' as const, actor: { type: 'account' as const, id: 'acc', address: '203.0.113.9' }, target: { type: 'account' as const, id: 'acc' }, details: { provider: 'github' } };
    const failures: unknown[] = [];
    await recordAuditHot(database.hot, [input, { ...input, action: 'account.created' }], (err) => failures.push(err), at);
    await withActor(input.actor, () => recordAudit(database.prisma, input, at));
    expect(failures).toEqual([]);
    const events = await database.prisma.auditEvent.findMany({ where: { at }, orderBy: { id: 'asc' } });
    expect(events).toHaveLength(3);
    const strip = ({ id: _id, ...e }: Record<string, unknown>) => e;
    const [hotSignIn, prismaSignIn] = events.filter((e) => e.action === 'sign_in.succeeded');
    expect(strip(hotSignIn)).toEqual(strip(prismaSignIn));
    const deliveries = await database.prisma.webhookDelivery.findMany({ where: { eventId: { in: events.map((e) => e.id) } } });
    const of = (eventId: string) => deliveries.filter((d) => d.eventId === eventId).map((d) => d.webhookId).sort();
    expect(of(hotSignIn.id)).toEqual([all.webhook.id, signIns.webhook.id].sort());
    expect(of(prismaSignIn.id)).toEqual([all.webhook.id, signIns.webhook.id].sort());
    expect(of(events.find((e) => e.action === 'account.created')!.id)).toEqual([all.webhook.id]);
    const one = (eventId: string) => {
      const { id: _i, eventId: _e, createdAt: _c, payload, ...d } = deliveries.find((x) => x.eventId === eventId && x.webhookId === all.webhook.id)!;
      const { id: _mid, data, ...message } = payload as Record<string, unknown>;
      const { id: _did, ...rest } = (data ?? {}) as Record<string, unknown>;
      return { ...d, message, rest };
    };
    expect(one(hotSignIn.id)).toEqual(one(prismaSignIn.id));
  });

  it('records nothing when a row is refused, and says so to the caller', async () => {
    const failures: unknown[] = [];
    const count = await database.prisma.auditEvent.count();
    await recordAuditHot(database.hot, [{ action: 'sign_in.succeeded', details: { provider: 'bad\u0000' } }], (err) => failures.push(err));
    expect(failures).toHaveLength(1);
    expect(await database.prisma.auditEvent.count()).toBe(count);
  });
});
