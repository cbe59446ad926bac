import { databaseKinds, migratedDatabase, type TestDatabase } from '../support/databases.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { PrismaAdapter } from '../../src/oidc/adapter.js';
import { PayloadReader, PURGE_BATCH, purgeExpiredPayloads } from '../../src/storage/oidc-payloads.js';
import type { Db } from '../../src/storage/database.js';

describe.each(databaseKinds())('oidc-provider adapter on %s', (kind) => {
  let testDb: TestDatabase;
  let database: Database;
  let clock = Date.now();
  const now = () => clock;

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ testDb, database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  it('stores, finds and destroys a payload', async () => {
    const adapter = new PrismaAdapter(database.prisma, 'AccessToken', now);
    await adapter.upsert('at1', { jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a b' }, 60);
    expect(await adapter.find('at1')).toEqual({ jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a b' });
    await adapter.upsert('at1', { jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a' }, 60);
    expect((await adapter.find('at1'))?.scope).toBe('a');
    await adapter.destroy('at1');
    expect(await adapter.find('at1')).toBeUndefined();
  });

  it('filters every lookup by model type', async () => {
    const sessions = new PrismaAdapter(database.prisma, 'Session', now);
    const interactions = new PrismaAdapter(database.prisma, 'Interaction', now);
    const devices = new PrismaAdapter(database.prisma, 'DeviceCode', now);
    await sessions.upsert('same-id', { uid: 'u-1', kind: 'Session' }, 60);
    await devices.upsert('dc1', { userCode: 'ABCD-EFGH', kind: 'DeviceCode' }, 60);

    expect(await interactions.find('same-id')).toBeUndefined();
    expect(await interactions.findByUid('u-1')).toBeUndefined();
    expect((await sessions.findByUid('u-1'))?.kind).toBe('Session');
    expect(await sessions.findByUserCode('ABCD-EFGH')).toBeUndefined();
    expect((await devices.findByUserCode('ABCD-EFGH'))?.kind).toBe('DeviceCode');

    // destroying an id in one model leaves the other model's row alone
    await interactions.upsert('same-id', { kind: 'Interaction' }, 60);
    await interactions.destroy('same-id');
    expect(await sessions.find('same-id')).toBeDefined();
  });

  it('treats expired rows as absent, and purges them', async () => {
    const adapter = new PrismaAdapter(database.prisma, 'AuthorizationCode', now);
    await adapter.upsert('short', { kind: 'AuthorizationCode' }, 10);
    await adapter.upsert('long', { kind: 'AuthorizationCode' }, 3600);
    await adapter.upsert('forever', { kind: 'AuthorizationCode' }, 0);
    clock += 11_000;
    expect(await adapter.find('short')).toBeUndefined();
    expect(await adapter.find('long')).toBeDefined();

    const purged = await purgeExpiredPayloads(database.prisma, new Date(clock));
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = await database.prisma.oidcPayload.findMany({ where: { type: 'AuthorizationCode' }, select: { id: true } });
    expect(left.map((r) => r.id).sort()).toEqual(['forever', 'long']);
  });

  it('revokes by grant id within the model only', async () => {
    const tokens = new PrismaAdapter(database.prisma, 'RefreshToken', now);
    const codes = new PrismaAdapter(database.prisma, 'AuthorizationCode', now);
    await tokens.upsert('rt1', { grantId: 'grant-x' }, 60);
    await tokens.upsert('rt2', { grantId: 'grant-x' }, 60);
    await tokens.upsert('rt3', { grantId: 'grant-y' }, 60);
    await codes.upsert('c1', { grantId: 'grant-x' }, 60);
    await tokens.revokeByGrantId('grant-x');
    expect(await tokens.find('rt1')).toBeUndefined();
    expect(await tokens.find('rt2')).toBeUndefined();
    expect(await tokens.find('rt3')).toBeDefined();
    expect(await codes.find('c1')).toBeDefined();
  });

  it('marks a payload consumed, with the time in seconds', async () => {
    const adapter = new PrismaAdapter(database.prisma, 'AuthorizationCode', now);
    await adapter.upsert('code-1', { kind: 'AuthorizationCode' }, 60);
    expect((await adapter.find('code-1'))?.consumed).toBeUndefined();
    await adapter.consume('code-1');
    expect((await adapter.find('code-1'))?.consumed).toBe(Math.floor(clock / 1000));
    await expect(adapter.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('lets exactly one of 20 concurrent consumes win', async () => {
    // PostgreSQL: separate pools, like separate server instances. SQLite: one
    // process has one connection (several in one thread would block each other
    // in SQLite's busy handler), so the race is between interleaved queries.
    const others = kind === 'postgresql' ? Array.from({ length: 4 }, () => openDatabase({ url: testDb.url, kind })) : [];
    try {
      const adapters = [database, ...others].map((d) => new PrismaAdapter(d.prisma, 'AuthorizationCode', now));
      await adapters[0].upsert('race', { kind: 'AuthorizationCode' }, 60);
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => adapters[i % adapters.length].consume('race')),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected).toHaveLength(19);
      for (const r of rejected) expect(r.reason).toMatchObject({ error: 'invalid_grant' });
    } finally {
      await Promise.all(others.map((d) => d.close()));
    }
  });

  it('answers lookups of several kinds asked together with one query, each with its own row', async () => {
    const queries: string[] = [];
    // the same database, counting the queries the reader makes
    const counting = { oidcPayload: new Proxy(database.prisma.oidcPayload, {
      get: (target, prop) => (typeof prop === 'string' && prop.startsWith('find') ? (...args: unknown[]) => (queries.push(prop), (target as any)[prop](...args)) : (target as any)[prop]),
    }) } as unknown as Db;
    const reader = new PayloadReader(counting);
    const [access, refresh] = [new PrismaAdapter(database.prisma, 'AccessToken', now, reader), new PrismaAdapter(database.prisma, 'RefreshToken', now, reader)];
    const credentials = new PrismaAdapter(database.prisma, 'ClientCredentials', now, reader);
    await access.upsert('shared-id', { kind: 'AccessToken', jti: 'shared-id' }, 60);
    await refresh.upsert('other-id', { kind: 'RefreshToken', jti: 'other-id' }, 60);
    // as oidc-provider's introspection without a hint: the three kinds at once
    const found = await Promise.all([access.find('shared-id'), credentials.find('shared-id'), refresh.find('shared-id')]);
    expect(found.map((f) => f?.kind)).toEqual(['AccessToken', undefined, undefined]);
    expect(queries).toEqual(['findMany']);
    // a lookup on its own is one plain query
    expect((await refresh.find('other-id'))?.kind).toBe('RefreshToken');
    expect(queries).toEqual(['findMany', 'findUnique']);
  });
});

describe.each(databaseKinds())('the fast payload read on %s', (kind) => {
  it('returns exactly what Prisma returns: payload, expiry and consumption times', async () => {
    const { database, close } = await migratedDatabase(kind);
    try {
      const at = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
      const adapter = new PrismaAdapter(database.prisma, 'AuthorizationCode', () => at);
      await adapter.upsert('fast-1', { kind: 'AuthorizationCode', nested: { a: [1, 'é', null] } }, 3600);
      await adapter.upsert('fast-2', { kind: 'AuthorizationCode' }, 0);
      await adapter.consume('fast-1');
      const slow = new PayloadReader(database.prisma);
      const fast = new PayloadReader(database.prisma, database.lookupPayloads);
      for (const id of ['fast-1', 'fast-2', 'missing']) {
        const [a, b] = await Promise.all([slow.find('AuthorizationCode', id), fast.find('AuthorizationCode', id)]);
        expect(b).toEqual(a);
      }
      expect((await fast.find('AuthorizationCode', 'fast-1'))?.expiresAt?.getTime()).toBe(at + 3600_000);
      expect((await fast.find('AuthorizationCode', 'fast-1'))?.consumedAt?.getTime()).toBe(at);
    } finally {
      await close();
    }
  });
});

describe.each(databaseKinds())('the purge on %s', (kind) => {
  it('deletes every expired artifact in short batches and keeps the live ones', async () => {
    const { database, close } = await migratedDatabase(kind);
    try {
      const now = Date.now();
      const expired = Array.from({ length: 5_000 }, (_, i) => ({ type: i % 2 ? 'AccessToken' : 'Session', id: `old-${i}`, payload: {}, expiresAt: new Date(now - 1000) }));
      const live = Array.from({ length: 50 }, (_, i) => ({ type: 'AccessToken', id: `live-${i}`, payload: {}, expiresAt: new Date(now + 3_600_000) }));
      // the same id under another type, still live: only the expired row of that id goes
      live.push({ type: 'RefreshToken', id: 'old-1', payload: {}, expiresAt: new Date(now + 3_600_000) });
      await database.prisma.oidcPayload.createMany({ data: [...expired, ...live] });
      const statements: string[] = [];
      const counting = { oidcPayload: new Proxy(database.prisma.oidcPayload, {
        get: (target, prop) => (prop === 'deleteMany' ? (...args: unknown[]) => (statements.push('delete'), (target as any).deleteMany(...args)) : (target as any)[prop]),
      }) } as unknown as Db;
      expect(await purgeExpiredPayloads(counting, new Date(now))).toBe(5_000);
      expect(statements).toHaveLength(5_000 / PURGE_BATCH);
      expect(await database.prisma.oidcPayload.count()).toBe(51);
      expect(await database.prisma.oidcPayload.count({ where: { type: 'RefreshToken', id: 'old-1' } })).toBe(1);
    } finally {
      await close();
    }
  });
});
