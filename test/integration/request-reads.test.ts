import { databaseKinds, migratedDatabase, payloadAdapter as adapterOf } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { findRequestWith, flushWrites, inRequestScope as inScope, PresentedArtifactGoneError } from '../../src/storage/request-reads.js';

/** A request of the test's own, carried as oidc-provider carries its ctx. */
const requests = new AsyncLocalStorage<object>();
findRequestWith(() => requests.getStore());
function inRequestScope<T>(fn: () => Promise<T>, options: { deferWrites?: boolean } = {}): Promise<T> {
  const request = {};
  return requests.run(request, () => inScope(request, fn, options));
}
const currentRequest = () => requests.getStore()!;
import { digestOf } from '../../src/storage/digest.js';

/**
 * The read-ahead statement, the one-statement write, and the request scope that
 * uses them (storage/request-reads.ts), on both databases, against rows Prisma
 * writes and reads.
 */
describe.each(databaseKinds())('read-ahead and deferred writes on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;
  const at = Date.UTC(2030, 0, 2, 3, 4, 5, 678);

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
    const p = database.prisma;
    await p.account.create({ data: { id: 'acc-on', email: 'ada@example.org', emailVerified: true, name: 'Ada', username: 'ada', picture: null } });
    await p.account.create({ data: { id: 'acc-off', email: null, emailVerified: false, name: null, username: null, picture: null, disabledAt: new Date(at) } });
    await p.oidcPayload.create({ data: { type: 'Grant', id: 'grant-1', payload: { kind: 'Grant', accountId: 'acc-on', openid: { scope: 'openid' } }, grantId: null, accountId: 'acc-on', expiresAt: new Date(at + 60_000) } });
    await p.oidcPayload.create({ data: { type: 'Session', id: digestOf('session-cookie'), payload: { kind: 'Session', uid: 'sess-uid', accountId: 'acc-on' }, uid: 'sess-uid', accountId: 'acc-on', expiresAt: new Date(at + 60_000) } });
    const token = (value: string, extra: Record<string, unknown>, accountId: string) => p.oidcPayload.create({
      data: { type: 'AccessToken', id: digestOf(value), payload: { kind: 'AccessToken', grantId: 'grant-1', accountId, ...extra }, grantId: 'grant-1', accountId, expiresAt: new Date(at + 60_000), consumedAt: new Date(at) },
    });
    await token('bound', { expiresWithSession: true, sessionUid: 'sess-uid' }, 'acc-on');
    await token('unbound', { sessionUid: 'sess-uid' }, 'acc-on');
    await token('of-disabled', { expiresWithSession: true, sessionUid: 'gone-uid' }, 'acc-off');
  });
  afterAll(() => close?.());

  it('reads a token with its grant, its bound session and its account in one statement, as Prisma wrote them', async () => {
    const ahead = await database.hot.findPayloadsAhead(['AccessToken'], [digestOf('bound'), digestOf('of-disabled')]);
    expect(ahead.rows.map((r) => r.id).sort()).toEqual([digestOf('bound'), digestOf('of-disabled')].sort());
    const bound = ahead.rows.find((r) => r.id === digestOf('bound'))!;
    expect(bound).toEqual({ type: 'AccessToken', id: digestOf('bound'), payload: { kind: 'AccessToken', grantId: 'grant-1', accountId: 'acc-on', expiresWithSession: true, sessionUid: 'sess-uid' }, expiresAt: new Date(at + 60_000), consumedAt: new Date(at) });
    expect(ahead.grants).toEqual([{ type: 'Grant', id: 'grant-1', payload: { kind: 'Grant', accountId: 'acc-on', openid: { scope: 'openid' } }, expiresAt: new Date(at + 60_000), consumedAt: null }]);
    expect(ahead.sessions).toEqual([{ type: 'Session', id: digestOf('session-cookie'), uid: 'sess-uid', payload: { kind: 'Session', uid: 'sess-uid', accountId: 'acc-on' }, expiresAt: new Date(at + 60_000), consumedAt: null }]);
    // a disabled account is not read (findAccount's rule); asked-for ids say what was looked for
    expect(ahead.accounts).toEqual([{ id: 'acc-on', email: 'ada@example.org', emailVerified: true, name: 'Ada', username: 'ada', picture: null }]);
    expect(ahead.asked.accountIds.sort()).toEqual(['acc-off', 'acc-on']);
    expect(ahead.asked.sessionUids.sort()).toEqual(['gone-uid', 'sess-uid']);
  });

  it('reads a session only for a token bound to it', async () => {
    const ahead = await database.hot.findPayloadsAhead(['AccessToken'], [digestOf('unbound')]);
    expect(ahead.sessions).toEqual([]);
    expect(ahead.asked.sessionUids).toEqual([]);
    expect(ahead.grants).toHaveLength(1);
  });

  it('answers the grant and account from the request that read them ahead, and only from it', async () => {
    const grants = adapterOf(database, 'Grant');
    const tokens = adapterOf(database, 'AccessToken', () => at);
    const outside = await inRequestScope(async () => {
      expect(await tokens.find('bound')).toMatchObject({ grantId: 'grant-1', jti: 'bound' });
      // another request revokes the grant and disables the account meanwhile
      await database.prisma.oidcPayload.delete({ where: { type_id: { type: 'Grant', id: 'grant-1' } } });
      // this request goes on with what it read (as if oidc-provider had read them one by one)
      expect(await grants.find('grant-1')).toMatchObject({ accountId: 'acc-on' });
      expect(await database.hot.findAccount('acc-on')).toMatchObject({ id: 'acc-on' });
      return { grants, tokens };
    });
    // the next request sees the revocation
    await inRequestScope(async () => {
      expect(await outside.tokens.find('bound')).toMatchObject({ jti: 'bound' });
      expect(await outside.grants.find('grant-1')).toBeUndefined();
    });
    expect(await grants.find('grant-1')).toBeUndefined();
    await database.prisma.oidcPayload.create({ data: { type: 'Grant', id: 'grant-1', payload: { kind: 'Grant', accountId: 'acc-on', openid: { scope: 'openid' } }, accountId: 'acc-on', expiresAt: new Date(at + 60_000) } });
  });

  it('drops what a write in the request touches', async () => {
    const grants = adapterOf(database, 'Grant', () => at);
    const tokens = adapterOf(database, 'AccessToken', () => at);
    await inRequestScope(async () => {
      await tokens.find('bound');
      await grants.upsert('grant-1', { kind: 'Grant', accountId: 'acc-on', openid: { scope: 'openid email' } } as never, 60);
      expect(await grants.find('grant-1')).toMatchObject({ openid: { scope: 'openid email' } });
    });
  });

  it('defers upserts to one statement, answers them to lookups of the same request, and writes them as Prisma reads them', async () => {
    const tokens = adapterOf(database, 'RefreshToken', () => at);
    await inRequestScope(async () => {
      await tokens.upsert('rt-1', { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on' } as never, 3600);
      await tokens.upsert('rt-2', { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on', nested: ['é', '\u{1F600}'] } as never, 3600);
      expect(await database.prisma.oidcPayload.count({ where: { type: 'RefreshToken' } })).toBe(0);
      expect(await tokens.find('rt-2')).toMatchObject({ jti: 'rt-2', nested: ['é', '\u{1F600}'] });
      await flushWrites(currentRequest(), database.hot);
    }, { deferWrites: true });
    const rows = await database.prisma.oidcPayload.findMany({ where: { type: 'RefreshToken' }, orderBy: { id: 'asc' } });
    expect(rows).toEqual([
      { type: 'RefreshToken', id: digestOf('rt-1'), payload: { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on' }, grantId: 'grant-1', accountId: 'acc-on', uid: null, userCode: null, expiresAt: new Date(at + 3600_000), consumedAt: null },
      { type: 'RefreshToken', id: digestOf('rt-2'), payload: { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on', nested: ['é', '\u{1F600}'] }, grantId: 'grant-1', accountId: 'acc-on', uid: null, userCode: null, expiresAt: new Date(at + 3600_000), consumedAt: null },
    ].sort((x, y) => (x.id < y.id ? -1 : 1)));
  });

  it('writes a deferred row before an atomic statement on it: a consume of what the request just saved finds it', async () => {
    const codes = adapterOf(database, 'AuthorizationCode', () => at);
    await inRequestScope(async () => {
      await codes.upsert('code-1', { kind: 'AuthorizationCode', grantId: 'grant-1' } as never, 60);
      expect(await database.prisma.oidcPayload.count({ where: { type: 'AuthorizationCode', id: digestOf('code-1') } })).toBe(0);
      await codes.consume('code-1');
      const row = await database.prisma.oidcPayload.findUniqueOrThrow({ where: { type_id: { type: 'AuthorizationCode', id: digestOf('code-1') } } });
      expect(row.consumedAt).toEqual(new Date(at));
      // a second consume fails, as without deferral
      await expect(codes.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
      await flushWrites(currentRequest(), database.hot);
    }, { deferWrites: true });
  });

  it('writes what a request issued only while the code or refresh token it presented exists', async () => {
    const refresh = adapterOf(database, 'RefreshToken', () => at);
    const access = adapterOf(database, 'AccessToken', () => at);
    await refresh.upsert('presented-1', { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on' } as never, 3600);
    await refresh.upsert('presented-2', { kind: 'RefreshToken', grantId: 'grant-1', accountId: 'acc-on' } as never, 3600);
    // a rotation that finishes before any revocation: written
    await inRequestScope(async () => {
      expect(await refresh.find('presented-1')).toMatchObject({ jti: 'presented-1' });
      await refresh.consume('presented-1');
      await refresh.upsert('successor-1', { kind: 'RefreshToken', grantId: 'grant-1' } as never, 3600);
      await flushWrites(currentRequest(), database.hot);
    }, { deferWrites: true });
    expect(await refresh.find('successor-1')).toMatchObject({ jti: 'successor-1' });
    // a revocation (another request deletes the grant's tokens) lands between the rotation's consume and its write
    const racing = inRequestScope(async () => {
      await refresh.find('presented-2');
      await refresh.consume('presented-2');
      await refresh.upsert('successor-2', { kind: 'RefreshToken', grantId: 'grant-1' } as never, 3600);
      await access.upsert('access-2', { kind: 'AccessToken', grantId: 'grant-1' } as never, 600);
      await database.prisma.oidcPayload.deleteMany({ where: { grantId: 'grant-1', type: { in: ['RefreshToken', 'AccessToken'] } } });
      await flushWrites(currentRequest(), database.hot);
    }, { deferWrites: true });
    await expect(racing).rejects.toBeInstanceOf(PresentedArtifactGoneError);
    expect(await refresh.find('successor-2')).toBeUndefined();
    expect(await access.find('access-2')).toBeUndefined();
  });

  it('writes none of the deferred rows when one of them fails, and throws the database error', async () => {
    const other = await migratedDatabase(kind);
    try {
      const p = other.database.prisma;
      // the database refuses the second row
      const refused = digestOf('rt-b');
      if (kind === 'sqlite') {
        await p.$executeRawUnsafe(`CREATE TRIGGER refuse BEFORE INSERT ON OidcPayload WHEN NEW.id = '${refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
      } else {
        await p.$executeRawUnsafe(`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql`);
        await p.$executeRawUnsafe(`CREATE TRIGGER refuse BEFORE INSERT ON "OidcPayload" FOR EACH ROW WHEN (NEW.id = '${refused}') EXECUTE FUNCTION refuse()`);
      }
      const tokens = adapterOf(other.database, 'RefreshToken', () => at);
      const flushed = inRequestScope(async () => {
        await tokens.upsert('rt-a', { kind: 'RefreshToken' } as never, 3600);
        await tokens.upsert('rt-b', { kind: 'RefreshToken' } as never, 3600);
        await flushWrites(currentRequest(), other.database.hot);
      }, { deferWrites: true });
      await expect(flushed).rejects.toMatchObject({ name: 'DatabaseUnavailableError' });
      expect(await p.oidcPayload.count({ where: { type: 'RefreshToken' } })).toBe(0);
    } finally {
      await other.close();
    }
  });
});
