import { databaseKinds, migratedDatabase, payloadAdapter } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { listIdentities } from '../../src/storage/accounts.js';
import { findAccount, signInWith } from '../../src/services/accounts.js';
import { listConsents, rememberConsent, rememberedGrantId, withdrawConsents } from '../../src/services/consents.js';
import { createClient, deleteClient } from '../../src/services/clients.js';
import type { UpstreamProfile } from '../../src/federation/upstream.js';

const profile = (over: Partial<UpstreamProfile>): UpstreamProfile => ({
  provider: 'github',
  subject: '1',
  email: null,
  emailVerified: false,
  name: null,
  username: null,
  picture: null,
  raw: {},
  ...over,
});

describe.each(databaseKinds())('accounts and consent storage on %s', (kind) => {
  let database: Database;

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  it('creates an account with its own sub on first sign-in, and finds it again', async () => {
    const first = await signInWith(database.prisma, profile({ subject: '100', email: 'Ada@Example.com', emailVerified: true, name: 'Ada', username: 'ada' }), { linkVerifiedEmails: false });
    expect(first.created).toBe(true);
    expect(first.account.id).not.toBe('100');
    expect(first.account).toMatchObject({ email: 'ada@example.com', emailVerified: true, name: 'Ada', username: 'ada' });
    const again = await signInWith(database.prisma, profile({ subject: '100', email: 'ada@example.com', emailVerified: true, name: 'Ada L.' }), { linkVerifiedEmails: false });
    expect(again).toMatchObject({ created: false, linked: false, account: { id: first.account.id, name: 'Ada L.' } });
    expect(await findAccount(database.hot, first.account.id)).toMatchObject({ name: 'Ada L.' });
  });

  it('links a second provider only when linking is on and both emails are verified', async () => {
    const gh = await signInWith(database.prisma, profile({ subject: '200', email: 'grace@example.com', emailVerified: true }), { linkVerifiedEmails: true });
    // linking off: a new account even with a verified match
    const off = await signInWith(database.prisma, profile({ provider: 'google', subject: 'g-1', email: 'grace@example.com', emailVerified: true }), { linkVerifiedEmails: false });
    expect(off.account.id).not.toBe(gh.account.id);
    // unverified upstream email: never linked
    const unverified = await signInWith(database.prisma, profile({ provider: 'acme', subject: 'a-1', email: 'grace@example.com', emailVerified: false }), { linkVerifiedEmails: true });
    expect(unverified).toMatchObject({ created: true, linked: false });
    // verified on both sides, linking on: linked
    const linked = await signInWith(database.prisma, profile({ provider: 'okta', subject: 'o-1', email: 'GRACE@example.com', emailVerified: true }), { linkVerifiedEmails: true });
    expect(linked).toMatchObject({ created: false, linked: true });
    // the oldest verified account with that email wins
    expect(linked.account.id).toBe(gh.account.id);
    expect((await listIdentities(database.prisma, gh.account.id)).map((i) => i.provider).sort()).toEqual(['github', 'okta']);
  });

  it('does not link to an account whose own email is unverified', async () => {
    const a = await signInWith(database.prisma, profile({ subject: '300', email: 'eve@example.com', emailVerified: false }), { linkVerifiedEmails: true });
    const b = await signInWith(database.prisma, profile({ provider: 'google', subject: 'g-300', email: 'eve@example.com', emailVerified: true }), { linkVerifiedEmails: true });
    expect(b.account.id).not.toBe(a.account.id);
  });

  it('links only on what upstreams assert now, not on a stale account email', async () => {
    const first = await signInWith(database.prisma, profile({ provider: 'github', subject: '600', email: 'old@corp.example', emailVerified: true }), { linkVerifiedEmails: true });
    // the person's upstream no longer asserts that address: the account drops it
    const again = await signInWith(database.prisma, profile({ provider: 'github', subject: '600', email: 'new@corp.example', emailVerified: false }), { linkVerifiedEmails: true });
    expect(again.account).toMatchObject({ id: first.account.id, email: null, emailVerified: false });
    // someone who later holds the old address elsewhere is not linked into the account
    const newcomer = await signInWith(database.prisma, profile({ provider: 'google', subject: 'g-600', email: 'old@corp.example', emailVerified: true }), { linkVerifiedEmails: true });
    expect(newcomer.account.id).not.toBe(first.account.id);
  });

  it('survives two first sign-ins of one identity racing', async () => {
    const p = profile({ subject: '400', name: 'Racer' });
    const [x, y] = await Promise.all([
      signInWith(database.prisma, p, { linkVerifiedEmails: false }),
      signInWith(database.prisma, p, { linkVerifiedEmails: false }),
    ]);
    expect(x.account.id).toBe(y.account.id);
  });

  it('remembers consent per account and client, and revoking deletes the grant and its tokens', async () => {
    const { account } = await signInWith(database.prisma, profile({ subject: '500' }), { linkVerifiedEmails: false });
    const grants = payloadAdapter(database, 'Grant');
    const refresh = payloadAdapter(database, 'RefreshToken');
    await grants.upsert('grant-500', { accountId: account.id, clientId: 'app' }, 3600);
    await refresh.upsert('rt-500', { grantId: 'grant-500' }, 3600);
    await rememberConsent(database.prisma, account.id, 'app', 'grant-500');
    expect(await rememberedGrantId(database.hot, account.id, 'app')).toBe('grant-500');
    expect(await rememberedGrantId(database.hot, account.id, 'other-app')).toBeNull();
    expect(await listConsents(database.prisma, { clientId: 'app' })).toEqual([expect.objectContaining({ accountId: account.id, grantId: 'grant-500' })]);

    const revoked = await withdrawConsents(database.prisma, { accountId: account.id });
    expect(revoked.map((c) => c.grantId)).toEqual(['grant-500']);
    expect(revoked).toHaveLength(1);
    expect(await rememberedGrantId(database.hot, account.id, 'app')).toBeNull();
    expect(await grants.find('grant-500')).toBeUndefined();
    expect(await refresh.find('rt-500')).toBeUndefined();
  });

  it('forgets consents and revokes their grants when the client is deleted', async () => {
    const { account } = await signInWith(database.prisma, profile({ subject: '700' }), { linkVerifiedEmails: false });
    await createClient(database.prisma, {
      clientId: 'doomed', name: 'Doomed', tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'],
      redirectUris: ['https://doomed.example.com/cb'],
    });
    const grants = payloadAdapter(database, 'Grant');
    const refresh = payloadAdapter(database, 'RefreshToken');
    await grants.upsert('grant-700', { accountId: account.id, clientId: 'doomed' }, 3600);
    await refresh.upsert('rt-700', { grantId: 'grant-700' }, 3600);
    await rememberConsent(database.prisma, account.id, 'doomed', 'grant-700');
    await deleteClient(database.prisma, 'doomed');
    // a client re-created with the same id inherits nothing
    expect(await rememberedGrantId(database.hot, account.id, 'doomed')).toBeNull();
    expect(await grants.find('grant-700')).toBeUndefined();
    expect(await refresh.find('rt-700')).toBeUndefined();
  });
});
