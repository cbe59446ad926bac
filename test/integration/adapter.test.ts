import { databaseKinds, migratedDatabase, payloadAdapter as adapterOf, type TestDatabase } from '../support/databases.js';
import { openDatabase, transaction, type Database, type Db } from '../../src/storage/database.js';
import { PayloadAdapter } from '../../src/oidc/adapter.js';
import { PayloadStore, PURGE_BATCH, purgeExpiredPayloads } from '../../src/storage/oidc-payloads.js';
import type { HotStatements } from '../../src/storage/hot-statements.js';
import { digestOf } from '../../src/storage/digest.js';

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
    const adapter = adapterOf(database, 'AccessToken', now);
    await adapter.upsert('at1', { jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a b' }, 60);
    expect(await adapter.find('at1')).toEqual({ jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a b' });
    await adapter.upsert('at1', { jti: 'at1', grantId: 'g1', kind: 'AccessToken', scope: 'a' }, 60);
    expect((await adapter.find('at1'))?.scope).toBe('a');
    await adapter.destroy('at1');
    expect(await adapter.find('at1')).toBeUndefined();
  });

  it('filters every lookup by model type', async () => {
    const sessions = adapterOf(database, 'Session', now);
    const interactions = adapterOf(database, 'Interaction', now);
    const devices = adapterOf(database, 'DeviceCode', now);
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
    const adapter = adapterOf(database, 'AuthorizationCode', now);
    await adapter.upsert('short', { kind: 'AuthorizationCode' }, 10);
    await adapter.upsert('long', { kind: 'AuthorizationCode' }, 3600);
    await adapter.upsert('forever', { kind: 'AuthorizationCode' }, 0);
    clock += 11_000;
    expect(await adapter.find('short')).toBeUndefined();
    expect(await adapter.find('long')).toBeDefined();

    const purged = await purgeExpiredPayloads(database.hot, new Date(clock));
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = await database.prisma.oidcPayload.findMany({ where: { type: 'AuthorizationCode' }, select: { id: true } });
    // stored under digests of their values
    expect(left.map((r) => r.id).sort()).toEqual([digestOf('forever'), digestOf('long')].sort());
  });

  it('revokes by grant id within the model only', async () => {
    const tokens = adapterOf(database, 'RefreshToken', now);
    const codes = adapterOf(database, 'AuthorizationCode', now);
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

  it('marks a payload consumed, with the time in seconds to the millisecond', async () => {
    const adapter = adapterOf(database, 'AuthorizationCode', now);
    await adapter.upsert('code-1', { kind: 'AuthorizationCode' }, 60);
    expect((await adapter.find('code-1'))?.consumed).toBeUndefined();
    await adapter.consume('code-1');
    expect((await adapter.find('code-1'))?.consumed).toBe(clock / 1000);
    await expect(adapter.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('lets exactly one of 20 concurrent consumes win', async () => {
    // PostgreSQL: separate pools, like separate server instances. SQLite: one
    // process has one connection (several in one thread would block each other
    // in SQLite's busy handler), so the race is between interleaved queries.
    const others = kind === 'postgresql' ? await Promise.all(Array.from({ length: 4 }, () => openDatabase({ url: testDb.url, kind }))) : [];
    try {
      const adapters = [database, ...others].map((d) => adapterOf(d, 'AuthorizationCode', now));
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
    // the same database, counting the statements the store runs
    const counting = new Proxy(database.hot, {
      get: (target, prop) => (typeof prop === 'string' && prop.startsWith('find') ? (...args: unknown[]) => (queries.push(prop), (target as any)[prop](...args)) : (target as any)[prop]),
    }) as HotStatements;
    const store = new PayloadStore(counting);
    const [access, refresh, credentials] = ['AccessToken', 'RefreshToken', 'ClientCredentials'].map((type) => new PayloadAdapter(store, type, now));
    await access.upsert('shared-id', { kind: 'AccessToken', jti: 'shared-id' }, 60);
    await refresh.upsert('other-id', { kind: 'RefreshToken', jti: 'other-id' }, 60);
    // as oidc-provider's introspection without a hint: the three kinds at once
    const found = await Promise.all([access.find('shared-id'), credentials.find('shared-id'), refresh.find('shared-id')]);
    expect(found.map((f) => f?.kind)).toEqual(['AccessToken', undefined, undefined]);
    expect(queries).toEqual(['findPayloads']);
    expect((await refresh.find('other-id'))?.kind).toBe('RefreshToken');
    expect(queries).toEqual(['findPayloads', 'findPayloads']);
  });

  it('refuses text no database can store on writes, and finds nothing for it', async () => {
    const adapter = adapterOf(database, 'Session', now);
    await expect(adapter.upsert('s-nul', { kind: 'Session', state: 'a\u0000b' } as never, 60)).rejects.toMatchObject({ error: 'invalid_request' });
    await expect(adapter.upsert('s-\ud800', { kind: 'Session' }, 60)).rejects.toMatchObject({ error: 'invalid_request' });
    expect(await adapter.find('x\u0000')).toBeUndefined();
    expect(await adapter.findByUid('\ud800')).toBeUndefined();
    await expect(adapter.consume('y\u0000')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await database.prisma.oidcPayload.count({ where: { id: { startsWith: 's-' } } })).toBe(0);
  });
});

describe.each(databaseKinds())('credentials at rest on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  /** every stored byte of the row, as text */
  const rawRow = async (type: string) => JSON.stringify(await database.prisma.oidcPayload.findMany({ where: { type } }));

  it('stores a bearer artifact under a digest of its value, without the value, and restores it on lookup', async () => {
    const adapter = adapterOf(database, 'RefreshToken');
    const value = 'rt-value-that-must-not-be-stored-0123456789';
    await adapter.upsert(value, { jti: value, kind: 'RefreshToken', grantId: 'g-9', accountId: 'acc-9' }, 60);
    expect(await rawRow('RefreshToken')).not.toContain(value);
    expect(await database.prisma.oidcPayload.count({ where: { type: 'RefreshToken', id: digestOf(value) } })).toBe(1);
    expect(await adapter.find(value)).toEqual({ jti: value, kind: 'RefreshToken', grantId: 'g-9', accountId: 'acc-9' });
    await adapter.consume(value);
    await adapter.destroy(value);
    expect(await database.prisma.oidcPayload.count({ where: { type: 'RefreshToken' } })).toBe(0);
  });

  it('seals the other artifacts an interaction names, readable only through its own id', async () => {
    const adapter = adapterOf(database, 'Interaction');
    const payload = { jti: 'int-value-1', kind: 'Interaction', session: { uid: 'su-1', cookie: 'session-cookie-value', accountId: 'a' }, deviceCode: 'device-code-value', parJti: 'par-value', returnTo: 'http://localhost:3000/auth/int-value-1' };
    await adapter.upsert('int-value-1', payload, 60);
    const raw = await rawRow('Interaction');
    for (const secret of ['int-value-1', 'session-cookie-value', 'device-code-value', 'par-value']) expect(raw).not.toContain(secret);
    expect(await adapter.find('int-value-1')).toEqual(payload);
  });

  it('finds a device code by its user code and by its value, storing neither', async () => {
    const adapter = adapterOf(database, 'DeviceCode');
    await adapter.upsert('device-code-value-2', { jti: 'device-code-value-2', kind: 'DeviceCode', userCode: 'WXYZ-2345' }, 60);
    const raw = await rawRow('DeviceCode');
    expect(raw).not.toContain('device-code-value-2');
    expect(raw).not.toContain('WXYZ-2345');
    expect(await adapter.findByUserCode('WXYZ-2345')).toEqual({ jti: 'device-code-value-2', kind: 'DeviceCode', userCode: 'WXYZ-2345' });
    expect(await adapter.find('device-code-value-2')).toEqual({ jti: 'device-code-value-2', kind: 'DeviceCode', userCode: 'WXYZ-2345' });
    expect(await adapter.findByUserCode('WXYZ-2346')).toBeUndefined();
  });

  it("keys what it keeps of a user code with the server's pepper: a dump cannot be searched by guessing codes", async () => {
    const pepper = Buffer.alloc(32, 7);
    const adapter = new PayloadAdapter(new PayloadStore(database.hot, pepper), 'DeviceCode');
    await adapter.upsert('device-code-value-3', { jti: 'device-code-value-3', kind: 'DeviceCode', userCode: 'QRST-3456' }, 60);
    const row = await database.prisma.oidcPayload.findUniqueOrThrow({ where: { type_id: { type: 'DeviceCode', id: digestOf('device-code-value-3') } } });
    expect(row.userCode).not.toBe(digestOf('QRST-3456'));
    expect((await adapter.findByUserCode('QRST-3456'))?.jti).toBe('device-code-value-3');
    // without the pepper (or with another), the code finds nothing and opens nothing
    expect(await new PayloadAdapter(new PayloadStore(database.hot, Buffer.alloc(32, 8)), 'DeviceCode').findByUserCode('QRST-3456')).toBeUndefined();
    expect(await adapterOf(database, 'DeviceCode').findByUserCode('QRST-3456')).toBeUndefined();
  });

  it('keeps grant ids as they are: every artifact of a grant names it', async () => {
    const adapter = adapterOf(database, 'Grant');
    await adapter.upsert('grant-value-3', { jti: 'grant-value-3', kind: 'Grant', accountId: 'a' }, 60);
    expect(await database.prisma.oidcPayload.count({ where: { type: 'Grant', id: 'grant-value-3' } })).toBe(1);
    expect((await adapter.find('grant-value-3'))?.jti).toBe('grant-value-3');
  });
});

describe.each(databaseKinds())('the hot statements on %s', (kind) => {
  it('write and read the rows exactly as Prisma does: payload, expiry and consumption times', async () => {
    const { database, close } = await migratedDatabase(kind);
    try {
      const at = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
      const adapter = adapterOf(database, 'AuthorizationCode', () => at);
      const payload = { kind: 'AuthorizationCode', grantId: 'g-1', accountId: 'acc-1', uid: 'u-1', nested: { a: [1, 'é', null, '\u{1F600}'] } };
      await adapter.upsert('hot-1', payload, 3600);
      await adapter.consume('hot-1');
      // written by the hot statements, read by Prisma
      expect(await database.prisma.oidcPayload.findUnique({ where: { type_id: { type: 'AuthorizationCode', id: digestOf('hot-1') } } })).toEqual({
        type: 'AuthorizationCode', id: digestOf('hot-1'), payload, grantId: 'g-1', accountId: 'acc-1', uid: 'u-1', userCode: null,
        expiresAt: new Date(at + 3600_000), consumedAt: new Date(at),
      });
      // written by Prisma, read by the hot statements
      await database.prisma.oidcPayload.create({ data: { type: 'DeviceCode', id: 'prisma-1', payload: { kind: 'DeviceCode', userCode: 'WXYZ' }, userCode: 'WXYZ', expiresAt: new Date(at), consumedAt: new Date(at + 1) } });
      expect(await database.hot.findPayloadBy('DeviceCode', 'userCode', 'WXYZ')).toEqual({
        type: 'DeviceCode', id: 'prisma-1', payload: { kind: 'DeviceCode', userCode: 'WXYZ' }, expiresAt: new Date(at), consumedAt: new Date(at + 1),
      });
      expect(await database.hot.findPayloads(['DeviceCode', 'AuthorizationCode'], ['prisma-1', digestOf('hot-1'), 'missing'])).toHaveLength(2);
    } finally {
      await close();
    }
  });

  it('read accounts and remembered consents as Prisma wrote them', async () => {
    const { database, close } = await migratedDatabase(kind);
    try {
      await database.prisma.account.create({ data: { id: 'acc-1', email: 'ada@example.org', emailVerified: true, name: 'Ada', username: null, picture: null } });
      await database.prisma.consent.create({ data: { accountId: 'acc-1', clientId: 'app', grantId: 'grant-1' } });
      expect(await database.hot.findAccount('acc-1')).toEqual({ id: 'acc-1', email: 'ada@example.org', emailVerified: true, name: 'Ada', username: null, picture: null });
      expect(await database.hot.findAccount('nobody')).toBeNull();
      expect(await database.hot.findConsentGrantId('acc-1', 'app')).toBe('grant-1');
      expect(await database.hot.findConsentGrantId('acc-1', 'other')).toBeNull();
    } finally {
      await close();
    }
  });

  if (kind === 'sqlite') {
    it('wait out a Prisma transaction holding the write lock without blocking the event loop', async () => {
      const { database, close } = await migratedDatabase(kind);
      try {
        const adapter = adapterOf(database, 'Session');
        let ticks = 0;
        const ticker = setInterval(() => (ticks += 1), 5);
        let write: Promise<void> | undefined;
        await transaction(database.prisma, async (tx) => {
          await tx.oidcPayload.create({ data: { type: 'Session', id: 'in-tx', payload: {} } });
          // the hot connection cannot write now; it must retry later, not spin in SQLite's busy handler
          write = adapter.upsert('outside-tx', { kind: 'Session' }, 60);
          await new Promise((resolve) => setTimeout(resolve, 100));
        });
        await write;
        clearInterval(ticker);
        expect(ticks).toBeGreaterThan(5);
        expect(await database.prisma.oidcPayload.count({ where: { type: 'Session', id: { in: ['in-tx', digestOf('outside-tx')] } } })).toBe(2);
      } finally {
        await close();
      }
    });
  }
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
      const statements: number[] = [];
      const counting = { deleteExpiredPayloads: (at: Date, limit: number) => database.hot.deleteExpiredPayloads(at, limit).then((n) => (statements.push(n), n)) };
      expect(await purgeExpiredPayloads(counting, new Date(now))).toBe(5_000);
      // full batches, then the one that finds nothing left
      expect(statements).toEqual([...Array(5_000 / PURGE_BATCH).fill(PURGE_BATCH), 0]);
      expect(await database.prisma.oidcPayload.count()).toBe(51);
      expect(await database.prisma.oidcPayload.count({ where: { type: 'RefreshToken', id: 'old-1' } })).toBe(1);
    } finally {
      await close();
    }
  });
});
