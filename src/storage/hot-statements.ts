import type Sqlite from 'better-sqlite3';
import type pg from 'pg';
import { DatabaseUnavailableError } from './errors.js';
import type { AccountRecord } from './accounts.js';
import { postgresAccountStatements, sqliteAccountStatements, type AccountStatements } from './hot-account-statements.js';

/**
 * The statements of the request hot path: the reads and writes of oidc-provider
 * artifacts that every token, code, session and interaction costs, the account
 * behind an ID token or UserInfo answer, and the remembered consent of an
 * authorization. They skip Prisma: its query compiler and interpreter took about
 * half of the CPU of every flow, and an upsert is four statements in a
 * transaction there, one here. Each database gets fixed, prepared statements in
 * the same row shapes Prisma reads and writes (Prisma keeps every other query,
 * and every transaction).
 */

export interface PayloadRow {
  type: string;
  id: string;
  payload: Record<string, unknown>;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

export interface PayloadWrite {
  type: string;
  id: string;
  payload: Record<string, unknown>;
  grantId: string | null;
  accountId: string | null;
  userCode: string | null;
  uid: string | null;
  expiresAt: Date | null;
}

/**
 * Rows found by (type, id), with what oidc-provider asks for next about them,
 * read in the same statement: the grant each names (`grantId`), the session a
 * session-bound one is bound to (`sessionUid`), and the enabled account of each
 * (`accountId`). `asked` lists what was looked for, found or not.
 */
export interface PayloadsAhead {
  rows: PayloadRow[];
  grants: PayloadRow[];
  sessions: (PayloadRow & { uid: string })[];
  accounts: AccountRecord[];
  asked: { grantIds: string[]; sessionUids: string[]; accountIds: string[] };
}

export interface HotStatements extends AccountStatements {
  /** rows whose type is one of `types` and whose id is one of `ids` */
  findPayloads(types: string[], ids: string[]): Promise<PayloadRow[]>;
  /** the same rows, and with them what they name (see PayloadsAhead): one statement */
  findPayloadsAhead(types: string[], ids: string[]): Promise<PayloadsAhead>;
  findPayloadBy(type: string, column: 'uid' | 'userCode', value: string): Promise<PayloadRow | null>;
  /** insert, or replace the row with the same (type, id) */
  savePayload(row: PayloadWrite): Promise<void>;
  /**
   * savePayload for several rows (distinct (type, id)), in one statement: all
   * or none. With `alive`, only while that row exists (locked against a
   * concurrent delete until the write commits): whether the rows were written.
   */
  savePayloads(rows: PayloadWrite[], alive?: { type: string; id: string }): Promise<boolean>;
  /**
   * inserts the row unless a live one (unexpired at `now`) has its (type, id);
   * whether this call wrote it. Atomic: of racing calls, on any number of
   * processes, exactly one gets true.
   */
  insertPayloadIfAbsent(row: PayloadWrite, now: Date): Promise<boolean>;
  /** marks the row consumed unless it already is; whether this call did */
  consumePayload(type: string, id: string, at: Date): Promise<boolean>;
  deletePayload(type: string, id: string): Promise<void>;
  deletePayloadsOfGrant(type: string, grantId: string): Promise<void>;
  /** deletes at most `limit` rows whose expiry is before `now`, in one statement; how many */
  deleteExpiredPayloads(now: Date, limit: number): Promise<number>;
  /** the account's claims; null for an unknown or disabled one */
  findAccount(id: string): Promise<AccountRecord | null>;
  findConsentGrantId(accountId: string, clientId: string): Promise<string | null>;
  close(): void;
}

/**
 * The statements are fixed and their inputs are storable text (oidc-payloads.ts
 * checks), so a failure here is the database being away or locked, not the
 * request: it becomes DatabaseUnavailableError, like Prisma's codes do.
 */
async function unavailableOnFailure<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new DatabaseUnavailableError({ cause: err });
  }
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** One row of a read-ahead statement: `kind` says which part of PayloadsAhead it is. */
interface AheadRow {
  kind: 'row' | 'grant' | 'session' | 'account';
  row: PayloadRow;
  grantId: string | null;
  accountId: string | null;
  /** a session's uid; for a row, the session it is bound to */
  uid: string | null;
}

function assembleAhead(found: AheadRow[]): PayloadsAhead {
  const ahead: PayloadsAhead = { rows: [], grants: [], sessions: [], accounts: [], asked: { grantIds: [], sessionUids: [], accountIds: [] } };
  for (const r of found) {
    if (r.kind === 'row') {
      ahead.rows.push(r.row);
      if (r.grantId) ahead.asked.grantIds.push(r.grantId);
      if (r.accountId) ahead.asked.accountIds.push(r.accountId);
      if (r.uid) ahead.asked.sessionUids.push(r.uid);
    } else if (r.kind === 'grant') {
      if (!ahead.grants.some((g) => g.id === r.row.id)) ahead.grants.push(r.row);
    } else if (r.kind === 'session') {
      if (!ahead.sessions.some((x) => x.id === r.row.id)) ahead.sessions.push({ ...r.row, uid: r.uid! });
    } else if (!ahead.accounts.some((x) => x.id === r.row.id)) {
      const a = r.row.payload as Omit<AccountRecord, 'id'>;
      ahead.accounts.push({ id: r.row.id, email: a.email, emailVerified: a.emailVerified, name: a.name, username: a.username, picture: a.picture });
    }
  }
  const { grantIds, sessionUids, accountIds } = ahead.asked;
  ahead.asked = { grantIds: [...new Set(grantIds)], sessionUids: [...new Set(sessionUids)], accountIds: [...new Set(accountIds)] };
  return ahead;
}

/**
 * PostgreSQL's read-ahead statement: each row asked for, joined with the grant
 * it names, the session it is bound to (oidc-provider checks that only when
 * `expiresWithSession`) and its enabled account: index lookups in one round
 * trip instead of four.
 */
const pgMs = (t: string, column: string) => `(extract(epoch from ${t}."${column}" AT TIME ZONE 'UTC') * 1000)::float8`;
export const PG_AHEAD_SQL = `SELECT t.type, t.id, t.payload, ${pgMs('t', 'expiresAt')} AS expires, ${pgMs('t', 'consumedAt')} AS consumed, t."grantId", t."accountId", b.uid AS bound,
    g.id AS g_id, g.payload AS g_payload, ${pgMs('g', 'expiresAt')} AS g_expires, ${pgMs('g', 'consumedAt')} AS g_consumed,
    s.id AS s_id, s.payload AS s_payload, ${pgMs('s', 'expiresAt')} AS s_expires, ${pgMs('s', 'consumedAt')} AS s_consumed,
    a.id AS a_id, a.email, a."emailVerified", a.name, a.username, a.picture
  FROM "OidcPayload" t
  CROSS JOIN LATERAL (SELECT CASE WHEN t.payload->>'expiresWithSession' = 'true' THEN t.payload->>'sessionUid' END AS uid) b
  LEFT JOIN "OidcPayload" g ON g.type = 'Grant' AND g.id = t."grantId"
  LEFT JOIN "OidcPayload" s ON s.type = 'Session' AND s.uid = b.uid
  LEFT JOIN "Account" a ON a.id = t."accountId" AND a."disabledAt" IS NULL
  WHERE t.type = ANY($1::text[]) AND t.id = ANY($2::text[])`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * WAL with synchronous=NORMAL: a commit is safe from a crash or kill -9 of the
 * process, and waits for no fsync; only a power loss or OS crash can undo the
 * last commits (never corrupt the file). FULL, SQLite's default, costs an fsync
 * per token. Both connections of a process use it (database.ts).
 */
export const SQLITE_SYNCHRONOUS = 'NORMAL';

/** How long a statement waits for SQLite's lock before the database counts as unavailable, ms. */
const SQLITE_LOCK_WAIT = 5000;

type SqlitePayload = { type: string; id: string; payload: string; expiresAt: string | null; consumedAt: string | null };
const fromSqlite = (r: SqlitePayload): PayloadRow => ({
  type: r.type,
  id: r.id,
  payload: JSON.parse(r.payload) as Record<string, unknown>,
  expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt),
  consumedAt: r.consumedAt === null ? null : new Date(r.consumedAt),
});
/** Prisma's text form of a SQLite DateTime (ISO 8601 with +00:00), so that its comparisons (the purge) agree. */
const sqliteTime = (d: Date | null) => (d === null ? null : d.toISOString().replace(/Z$/, '+00:00'));

const SQLITE_PAYLOAD_COLUMNS = 'type, id, payload, expiresAt, consumedAt';

/**
 * The read-ahead on SQLite. In process there is no round trip to save: simple
 * indexed lookups, one after another in one synchronous call, cost less than
 * the union statement PostgreSQL gets.
 */
function sqliteAhead(statement: (sql: string) => Sqlite.Statement, types: string[], ids: string[]): PayloadsAhead {
  type Found = SqlitePayload & { grantId: string | null; accountId: string | null; bound: string | null };
  const sql = `SELECT ${SQLITE_PAYLOAD_COLUMNS}, grantId, accountId, CASE WHEN json_extract(payload, '$.expiresWithSession') = 1 THEN json_extract(payload, '$.sessionUid') END AS bound
    FROM OidcPayload WHERE type IN (${marks(types.length)}) AND id IN (${marks(ids.length)})`;
  const found = statement(sql).all(...types, ...ids) as Found[];
  const tagged: AheadRow[] = found.map((r) => ({ kind: 'row', row: fromSqlite(r), grantId: r.grantId, accountId: r.accountId, uid: typeof r.bound === 'string' ? r.bound : null }));
  const byKey = statement(`SELECT ${SQLITE_PAYLOAD_COLUMNS} FROM OidcPayload WHERE type = ? AND id = ?`);
  const byUid = statement(`SELECT ${SQLITE_PAYLOAD_COLUMNS}, uid FROM OidcPayload WHERE type = ? AND uid = ? LIMIT 1`);
  const account = statement('SELECT id, email, emailVerified, name, username, picture FROM Account WHERE id = ? AND disabledAt IS NULL');
  for (const r of tagged.slice()) {
    const grant = r.grantId ? (byKey.get('Grant', r.grantId) as SqlitePayload | undefined) : undefined;
    if (grant) tagged.push({ kind: 'grant', row: fromSqlite(grant), grantId: null, accountId: null, uid: null });
    const session = r.uid ? (byUid.get('Session', r.uid) as (SqlitePayload & { uid: string }) | undefined) : undefined;
    if (session) tagged.push({ kind: 'session', row: fromSqlite(session), grantId: null, accountId: null, uid: session.uid });
    const a = r.accountId ? (account.get(r.accountId) as (Omit<AccountRecord, 'emailVerified'> & { emailVerified: number }) | undefined) : undefined;
    if (a) tagged.push({ kind: 'account', row: { type: 'Account', id: a.id, payload: { ...a, emailVerified: a.emailVerified === 1 }, expiresAt: null, consumedAt: null }, grantId: null, accountId: null, uid: null });
  }
  return assembleAhead(tagged);
}

/**
 * SQLite: a connection of its own to the file. It never waits for the lock
 * synchronously: a Prisma transaction of this same process may hold it across
 * awaits, and a blocked event loop would never let that transaction finish. A
 * busy statement is retried after a short sleep instead, for up to 5 s.
 */
export async function sqliteHotStatements(path: string): Promise<HotStatements> {
  // loaded here: a PostgreSQL process never needs the SQLite driver
  const { default: Sqlite } = await import('better-sqlite3');
  let connection: Sqlite.Database | undefined;
  const prepared = new Map<string, Sqlite.Statement>();
  const statement = (sql: string) => {
    if (!connection) {
      connection = new Sqlite(path, { fileMustExist: true, timeout: 0 });
      connection.pragma(`synchronous = ${SQLITE_SYNCHRONOUS}`);
    }
    let s = prepared.get(sql);
    if (!s) {
      s = connection.prepare(sql);
      prepared.set(sql, s);
    }
    return s;
  };
  const run = async <T>(fn: () => T): Promise<T> => {
    const deadline = Date.now() + SQLITE_LOCK_WAIT;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        return fn();
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw new DatabaseUnavailableError({ cause: err });
      }
      await sleep(wait);
    }
  };
  const payloadColumns = SQLITE_PAYLOAD_COLUMNS;
  /** `fn`'s statements in one immediate transaction: synchronous, so nothing else runs in between */
  const transaction = <T>(fn: () => T) => run(() => {
    statement('SELECT 1');
    return connection!.transaction(fn).immediate();
  });
  return {
    ...sqliteAccountStatements(statement, transaction, sqliteTime),
    async findPayloads(types, ids) {
      const sql = `SELECT ${payloadColumns} FROM OidcPayload WHERE type IN (${marks(types.length)}) AND id IN (${marks(ids.length)})`;
      return (await run(() => statement(sql).all(...types, ...ids) as SqlitePayload[])).map(fromSqlite);
    },
    async findPayloadsAhead(types, ids) {
      return run(() => sqliteAhead(statement, types, ids));
    },
    async findPayloadBy(type, column, value) {
      const sql = `SELECT ${payloadColumns} FROM OidcPayload WHERE type = ? AND ${column === 'uid' ? 'uid' : 'userCode'} = ? LIMIT 1`;
      const row = await run(() => statement(sql).get(type, value) as SqlitePayload | undefined);
      return row ? fromSqlite(row) : null;
    },
    async savePayload(r) {
      const sql = `INSERT INTO OidcPayload (type, id, payload, grantId, accountId, userCode, uid, expiresAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, grantId = excluded.grantId, accountId = excluded.accountId, userCode = excluded.userCode,
        uid = excluded.uid, expiresAt = excluded.expiresAt`;
      await run(() => statement(sql).run(r.type, r.id, JSON.stringify(r.payload), r.grantId, r.accountId, r.userCode, r.uid, sqliteTime(r.expiresAt)));
    },
    async savePayloads(rows, alive) {
      if (!rows.length) return true;
      const sql = `INSERT INTO OidcPayload (type, id, payload, grantId, accountId, userCode, uid, expiresAt) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, grantId = excluded.grantId, accountId = excluded.accountId, userCode = excluded.userCode,
        uid = excluded.uid, expiresAt = excluded.expiresAt`;
      const args = rows.flatMap((r) => [r.type, r.id, JSON.stringify(r.payload), r.grantId, r.accountId, r.userCode, r.uid, sqliteTime(r.expiresAt)]);
      if (!alive) return (await run(() => statement(sql).run(...args)), true);
      // one writer at a time: the check and the write are one transaction
      return transaction(() => {
        if (!statement('SELECT 1 FROM OidcPayload WHERE type = ? AND id = ?').get(alive.type, alive.id)) return false;
        statement(sql).run(...args);
        return true;
      });
    },
    async insertPayloadIfAbsent(r, now) {
      // an expired row the purge has not reached yet counts as absent: it is replaced
      const sql = `INSERT INTO OidcPayload (type, id, payload, grantId, accountId, userCode, uid, expiresAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, grantId = excluded.grantId, accountId = excluded.accountId, userCode = excluded.userCode,
        uid = excluded.uid, expiresAt = excluded.expiresAt, consumedAt = NULL WHERE OidcPayload.expiresAt <= ?`;
      const args = [r.type, r.id, JSON.stringify(r.payload), r.grantId, r.accountId, r.userCode, r.uid, sqliteTime(r.expiresAt), sqliteTime(now)];
      return (await run(() => statement(sql).run(...args))).changes === 1;
    },
    async consumePayload(type, id, at) {
      const sql = 'UPDATE OidcPayload SET consumedAt = ? WHERE type = ? AND id = ? AND consumedAt IS NULL';
      return (await run(() => statement(sql).run(sqliteTime(at), type, id))).changes === 1;
    },
    async deletePayload(type, id) {
      await run(() => statement('DELETE FROM OidcPayload WHERE type = ? AND id = ?').run(type, id));
    },
    async deletePayloadsOfGrant(type, grantId) {
      await run(() => statement('DELETE FROM OidcPayload WHERE type = ? AND grantId = ?').run(type, grantId));
    },
    async deleteExpiredPayloads(now, limit) {
      // by rowid: the expiry index finds them, the rowid deletes them (the key is (type, id), and an id alone has no index)
      const sql = 'DELETE FROM OidcPayload WHERE rowid IN (SELECT rowid FROM OidcPayload WHERE expiresAt < ? LIMIT ?)';
      return (await run(() => statement(sql).run(sqliteTime(now), limit))).changes;
    },
    async findAccount(id) {
      // a disabled account is not found: oidc-provider then refuses its sessions and tokens
      const sql = 'SELECT id, email, emailVerified, name, username, picture FROM Account WHERE id = ? AND disabledAt IS NULL';
      const row = await run(() => statement(sql).get(id) as (Omit<AccountRecord, 'emailVerified'> & { emailVerified: number }) | undefined);
      return row ? { ...row, emailVerified: row.emailVerified === 1 } : null;
    },
    async findConsentGrantId(accountId, clientId) {
      const sql = 'SELECT grantId FROM Consent WHERE accountId = ? AND clientId = ?';
      const row = await run(() => statement(sql).get(accountId, clientId) as { grantId: string } | undefined);
      return row?.grantId ?? null;
    },
    close() {
      connection?.close();
    },
  };
}

/** PostgreSQL: named prepared statements on the pool Prisma uses; times as epoch ms (the columns have no time zone). */
export function postgresHotStatements(pool: pg.Pool): HotStatements {
  const query = async <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) =>
    unavailableOnFailure(() => pool.query<R>({ name: `gatehouse-${name}`, text, values }));
  type Row = { type: string; id: string; payload: Record<string, unknown>; expires: number | null; consumed: number | null };
  const select = `SELECT type, id, payload,
      (extract(epoch from "expiresAt" AT TIME ZONE 'UTC') * 1000)::float8 AS expires,
      (extract(epoch from "consumedAt" AT TIME ZONE 'UTC') * 1000)::float8 AS consumed
    FROM "OidcPayload"`;
  const fromRow = (r: Row): PayloadRow => ({
    type: r.type,
    id: r.id,
    payload: r.payload,
    expiresAt: r.expires === null ? null : new Date(r.expires),
    consumedAt: r.consumed === null ? null : new Date(r.consumed),
  });
  // timestamp(3) without time zone holds UTC: values go in as UTC text
  const utc = (d: Date | null) => (d === null ? null : d.toISOString().replace(/Z$/, ''));
  return {
    ...postgresAccountStatements(query, utc),
    async findPayloads(types, ids) {
      const { rows } = await query<Row>('payloads', `${select} WHERE type = ANY($1::text[]) AND id = ANY($2::text[])`, [types, ids]);
      return rows.map(fromRow);
    },
    async findPayloadsAhead(types, ids) {
      type Found = Row & {
        grantId: string | null; accountId: string | null; bound: string | null;
        g_id: string | null; g_payload: Record<string, unknown>; g_expires: number | null; g_consumed: number | null;
        s_id: string | null; s_payload: Record<string, unknown>; s_expires: number | null; s_consumed: number | null;
        a_id: string | null; email: string | null; emailVerified: boolean; name: string | null; username: string | null; picture: string | null;
      };
      const { rows } = await query<Found>('payloads-ahead', PG_AHEAD_SQL, [types, ids]);
      const none = { grantId: null, accountId: null, uid: null };
      return assembleAhead(rows.flatMap((r): AheadRow[] => [
        { kind: 'row', row: fromRow(r), grantId: r.grantId, accountId: r.accountId, uid: r.bound },
        ...(r.g_id ? [{ kind: 'grant' as const, row: fromRow({ type: 'Grant', id: r.g_id, payload: r.g_payload, expires: r.g_expires, consumed: r.g_consumed }), ...none }] : []),
        ...(r.s_id ? [{ kind: 'session' as const, row: fromRow({ type: 'Session', id: r.s_id, payload: r.s_payload, expires: r.s_expires, consumed: r.s_consumed }), ...none, uid: r.bound }] : []),
        ...(r.a_id ? [{ kind: 'account' as const, row: { type: 'Account', id: r.a_id, payload: { email: r.email, emailVerified: r.emailVerified, name: r.name, username: r.username, picture: r.picture }, expiresAt: null, consumedAt: null }, ...none }] : []),
      ]));
    },
    async findPayloadBy(type, column, value) {
      const name = column === 'uid' ? 'payload-by-uid' : 'payload-by-user-code';
      const { rows } = await query<Row>(name, `${select} WHERE type = $1 AND "${column === 'uid' ? 'uid' : 'userCode'}" = $2 LIMIT 1`, [type, value]);
      return rows[0] ? fromRow(rows[0]) : null;
    },
    async savePayload(r) {
      await query('save-payload', `INSERT INTO "OidcPayload" (type, id, payload, "grantId", "accountId", "userCode", uid, "expiresAt") VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8::timestamp)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, "grantId" = excluded."grantId", "accountId" = excluded."accountId", "userCode" = excluded."userCode",
        uid = excluded.uid, "expiresAt" = excluded."expiresAt"`, [r.type, r.id, JSON.stringify(r.payload), r.grantId, r.accountId, r.userCode, r.uid, utc(r.expiresAt)]);
    },
    async savePayloads(rows, alive) {
      if (!rows.length) return true;
      // one prepared statement for any number of rows: a column per array. With `alive`, the row
      // is locked FOR SHARE: a delete of it running now finishes first (and then nothing is written)
      const insert = `INSERT INTO "OidcPayload" (type, id, payload, "grantId", "accountId", "userCode", uid, "expiresAt")
        SELECT u.* FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamp[])
          AS u(type, id, payload, "grantId", "accountId", "userCode", uid, "expiresAt")`;
      const upsert = `ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, "grantId" = excluded."grantId", "accountId" = excluded."accountId", "userCode" = excluded."userCode",
        uid = excluded.uid, "expiresAt" = excluded."expiresAt"`;
      const column = <K extends keyof PayloadWrite>(k: K) => rows.map((r) => r[k]);
      const values = [column('type'), column('id'), rows.map((r) => JSON.stringify(r.payload)), column('grantId'), column('accountId'), column('userCode'), column('uid'), rows.map((r) => utc(r.expiresAt))];
      if (!alive) return (await query('save-payloads', `${insert} ${upsert}`, values), true);
      const { rowCount } = await query('save-payloads-while-alive', `WITH alive AS (SELECT 1 FROM "OidcPayload" WHERE type = $9 AND id = $10 FOR SHARE)
        ${insert} WHERE EXISTS (SELECT 1 FROM alive) ${upsert}`, [...values, alive.type, alive.id]);
      return (rowCount ?? 0) > 0;
    },
    async insertPayloadIfAbsent(r, now) {
      // an expired row the purge has not reached yet counts as absent: it is replaced
      const { rowCount } = await query('insert-payload-if-absent', `INSERT INTO "OidcPayload" (type, id, payload, "grantId", "accountId", "userCode", uid, "expiresAt") VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8::timestamp)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, "grantId" = excluded."grantId", "accountId" = excluded."accountId", "userCode" = excluded."userCode",
        uid = excluded.uid, "expiresAt" = excluded."expiresAt", "consumedAt" = NULL WHERE "OidcPayload"."expiresAt" <= $9::timestamp`,
      [r.type, r.id, JSON.stringify(r.payload), r.grantId, r.accountId, r.userCode, r.uid, utc(r.expiresAt), utc(now)]);
      return rowCount === 1;
    },
    async consumePayload(type, id, at) {
      const { rowCount } = await query('consume-payload', 'UPDATE "OidcPayload" SET "consumedAt" = $1::timestamp WHERE type = $2 AND id = $3 AND "consumedAt" IS NULL', [utc(at), type, id]);
      return rowCount === 1;
    },
    async deletePayload(type, id) {
      await query('delete-payload', 'DELETE FROM "OidcPayload" WHERE type = $1 AND id = $2', [type, id]);
    },
    async deletePayloadsOfGrant(type, grantId) {
      await query('delete-grant-payloads', 'DELETE FROM "OidcPayload" WHERE type = $1 AND "grantId" = $2', [type, grantId]);
    },
    async deleteExpiredPayloads(now, limit) {
      // by key, and the expiry checked again: a row renewed since the inner select stays. ORDER BY
      // makes the inner select an index scan of the expiry index, stopping at the limit, whatever
      // the share of expired rows (without it the planner may scan the table).
      const { rowCount } = await query('delete-expired', `DELETE FROM "OidcPayload" WHERE (type, id) IN
        (SELECT type, id FROM "OidcPayload" WHERE "expiresAt" < $1::timestamp ORDER BY "expiresAt" LIMIT $2) AND "expiresAt" < $1::timestamp`, [utc(now), limit]);
      return rowCount ?? 0;
    },
    async findAccount(id) {
      const { rows } = await query<AccountRecord>('account-enabled', 'SELECT id, email, "emailVerified", name, username, picture FROM "Account" WHERE id = $1 AND "disabledAt" IS NULL', [id]);
      return rows[0] ?? null;
    },
    async findConsentGrantId(accountId, clientId) {
      const { rows } = await query<{ grantId: string }>('consent-grant', 'SELECT "grantId" FROM "Consent" WHERE "accountId" = $1 AND "clientId" = $2', [accountId, clientId]);
      return rows[0]?.grantId ?? null;
    },
    close() {},
  };
}
