import Sqlite from 'better-sqlite3';
import { migratedDatabase } from '../support/databases.js';
import { sqlitePath, transaction } from '../../src/storage/database.js';

/**
 * SQLite: a Prisma transaction begins DEFERRED, so one that reads and then
 * writes after another connection (the server's hot statements) committed
 * fails with SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out. The
 * transaction runs again instead (an operator's `consents revoke` failed this
 * way while the person's app kept refreshing).
 */
describe('a Prisma transaction on SQLite, while another connection writes', () => {
  it('runs again after a write conflict, and commits', async () => {
    const { testDb, database, close } = await migratedDatabase('sqlite');
    const other = new Sqlite(sqlitePath(testDb.url), { timeout: 5000 });
    try {
      let runs = 0;
      const count = await transaction(database.prisma, async (tx) => {
        runs += 1;
        const before = await tx.consent.count();
        // the first run: another connection commits between this transaction's read and its write
        if (runs === 1) other.prepare("INSERT INTO OidcPayload (type, id, payload) VALUES ('Session', 'other-write', '{}')").run();
        await tx.oidcPayload.create({ data: { type: 'Session', id: `tx-write-${runs}`, payload: {} } });
        return before;
      });
      expect(count).toBe(0);
      expect(runs).toBe(2);
      expect(await database.prisma.oidcPayload.count({ where: { type: 'Session', id: { in: ['tx-write-1', 'tx-write-2', 'other-write'] } } })).toBe(2);
    } finally {
      other.close();
      await close();
    }
  });
});
