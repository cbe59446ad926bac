// The query plan of every statement Gatehouse runs on a hot path, on a filled database (see
// seed-large.mjs), with the ones that read a whole table or index flagged (issue 12).
//   import { queryPlans } from './query-plans.mjs';
//   const { queries, flagged } = await queryPlans(databaseUrl);
// Standalone: node bench/query-plans.mjs <databaseUrl>
// The SQL is what Gatehouse sends: hot-statements.ts's prepared statements as written there,
// and for Prisma's queries the SQL Prisma 6.19 generates for them (logged once and written
// out here without its schema prefixes). It only plans (EXPLAIN, never EXPLAIN ANALYZE): nothing
// runs, nothing changes. On SQLite a database with statistics (ANALYZE) is planned twice:
// as it is, and as Gatehouse leaves a database, without them (hidden in a transaction that
// is rolled back: a moment's write lock).
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
// the read-ahead statement as Gatehouse sends it (needs `npm run build`)
import { PG_AHEAD_SQL } from '../dist/storage/hot-statements.js';

/** Tables that grow with use: a whole read of one of them on a hot path is a finding. */
const LARGE = new Set(['OidcPayload', 'Client', 'Consent', 'Account', 'FederatedIdentity']);
/** PostgreSQL: a table under this many rows is read whole by choice (the planner's right). */
const PG_SMALL = 10_000;
/** rows one statement of the purge deletes (PURGE_BATCH in src/storage/oidc-payloads.ts) */
const PURGE_BATCH = 500;

const marks = (n) => Array.from({ length: n }, () => '?').join(', ');
// hot-statements.ts's PostgreSQL select list
const pgPayloadSelect = `SELECT type, id, payload,
      (extract(epoch from "expiresAt" AT TIME ZONE 'UTC') * 1000)::float8 AS expires,
      (extract(epoch from "consumedAt" AT TIME ZONE 'UTC') * 1000)::float8 AS consumed
    FROM "OidcPayload"`;

/**
 * Each statement: where Gatehouse runs it, its SQL (`sqlite`, and `pg` where PostgreSQL's
 * differs; otherwise `sql` for both, its ? becoming $n) and its parameters, from real rows
 * (`v`, see sampleValues). `hot`: a named prepared statement of src/storage/hot-statements.ts
 * (SQL copied from there), which PostgreSQL may plan once for any values (the generic plan);
 * the others are Prisma's.
 */
const QUERIES = [
  {
    name: 'payloads by (type, id)',
    where: 'hot findPayloads: every token, code, session, interaction and grant read (3 types at once for introspection)',
    hot: true,
    sqlite: `SELECT type, id, payload, expiresAt, consumedAt FROM OidcPayload WHERE type IN (${marks(3)}) AND id IN (${marks(1)})`,
    pg: `${pgPayloadSelect} WHERE type = ANY($1::text[]) AND id = ANY($2::text[])`,
    params: (v, kind) => (kind === 'sqlite' ? ['AccessToken', 'ClientCredentials', 'RefreshToken', v.accessTokenId] : [['AccessToken', 'ClientCredentials', 'RefreshToken'], [v.accessTokenId]]),
  },
  {
    name: 'payloads with their grant, bound session and account (read-ahead)',
    where: 'hot findPayloadsAhead: every token and code read by oidc-provider (userinfo, token endpoint, introspection); on SQLite the row query, then the lookups below',
    hot: true,
    sqlite: `SELECT type, id, payload, expiresAt, consumedAt, grantId, accountId, CASE WHEN json_extract(payload, '$.expiresWithSession') = 1 THEN json_extract(payload, '$.sessionUid') END AS bound
        FROM OidcPayload WHERE type IN (${marks(3)}) AND id IN (${marks(1)})`,
    pg: PG_AHEAD_SQL,
    params: (v, kind) => (kind === 'sqlite' ? ['AccessToken', 'ClientCredentials', 'RefreshToken', v.accessTokenId] : [['AccessToken', 'ClientCredentials', 'RefreshToken'], [v.accessTokenId]]),
  },
  {
    name: 'payload by (type, uid)',
    where: 'hot findPayloadBy: the session of every request with a session cookie',
    hot: true,
    sqlite: 'SELECT type, id, payload, expiresAt, consumedAt FROM OidcPayload WHERE type = ? AND uid = ? LIMIT 1',
    pg: `${pgPayloadSelect} WHERE type = $1 AND "uid" = $2 LIMIT 1`,
    params: (v) => ['Session', v.accessTokenId],
  },
  {
    name: 'payload by (type, userCode)',
    where: 'hot findPayloadBy: device flow',
    hot: true,
    sqlite: 'SELECT type, id, payload, expiresAt, consumedAt FROM OidcPayload WHERE type = ? AND userCode = ? LIMIT 1',
    pg: `${pgPayloadSelect} WHERE type = $1 AND "userCode" = $2 LIMIT 1`,
    params: () => ['DeviceCode', 'BCDF-GHJK'],
  },
  {
    name: 'payload upsert',
    where: 'hot savePayload: every token, code, session, interaction and grant saved',
    hot: true,
    sqlite: `INSERT INTO OidcPayload (type, id, payload, grantId, userCode, uid, expiresAt) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, grantId = excluded.grantId, userCode = excluded.userCode,
        uid = excluded.uid, expiresAt = excluded.expiresAt`,
    pg: `INSERT INTO "OidcPayload" (type, id, payload, "grantId", "userCode", uid, "expiresAt") VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7::timestamp)
        ON CONFLICT (type, id) DO UPDATE SET payload = excluded.payload, "grantId" = excluded."grantId", "userCode" = excluded."userCode",
        uid = excluded.uid, "expiresAt" = excluded."expiresAt"`,
    params: (v) => ['AccessToken', 'new-token', '{}', v.grantId, null, null, v.future],
  },
  {
    name: 'consume',
    where: 'hot consumePayload: every authorization code and rotated refresh token',
    hot: true,
    sqlite: 'UPDATE OidcPayload SET consumedAt = ? WHERE type = ? AND id = ? AND consumedAt IS NULL',
    pg: 'UPDATE "OidcPayload" SET "consumedAt" = $1::timestamp WHERE type = $2 AND id = $3 AND "consumedAt" IS NULL',
    params: (v) => [v.now, 'RefreshToken', v.refreshTokenId],
  },
  {
    name: 'payload delete by (type, id)',
    where: 'hot deletePayload: revocation, a rotated refresh token, an ended session',
    hot: true,
    sql: 'DELETE FROM "OidcPayload" WHERE type = ? AND id = ?',
    params: (v) => ['AccessToken', v.accessTokenId],
  },
  {
    name: 'revoke by grantId',
    where: 'hot deletePayloadsOfGrant: refresh token reuse, code replay, logout (once per artifact type)',
    hot: true,
    sql: 'DELETE FROM "OidcPayload" WHERE type = ? AND "grantId" = ?',
    params: (v) => ['RefreshToken', v.grantId],
  },
  {
    name: 'purge: a batch of expired rows',
    where: 'hot deleteExpiredPayloads: purgeExpiredPayloads, PURGE_BATCH rows a statement, until none are left',
    hot: true,
    sqlite: 'DELETE FROM OidcPayload WHERE rowid IN (SELECT rowid FROM OidcPayload WHERE expiresAt < ? LIMIT ?)',
    pg: `DELETE FROM "OidcPayload" WHERE (type, id) IN
        (SELECT type, id FROM "OidcPayload" WHERE "expiresAt" < $1::timestamp ORDER BY "expiresAt" LIMIT $2) AND "expiresAt" < $1::timestamp`,
    params: (v) => [v.now, PURGE_BATCH],
  },
  {
    name: 'account by id',
    where: 'hot findAccount: oidc-provider findAccount (ID tokens, userinfo, every refresh)',
    hot: true,
    sqlite: 'SELECT id, email, emailVerified, name, username, picture FROM Account WHERE id = ?',
    pg: 'SELECT id, email, "emailVerified", name, username, picture FROM "Account" WHERE id = $1',
    params: (v) => [v.accountId],
  },
  {
    name: 'consent by (account, client)',
    where: 'hot findConsentGrantId: every authorization of a signed-in person',
    hot: true,
    sql: 'SELECT "grantId" FROM "Consent" WHERE "accountId" = ? AND "clientId" = ?',
    params: (v) => [v.accountId, v.clientId],
  },
  {
    name: 'delete grants',
    where: 'Prisma, oidc-payloads.ts deleteGrants: consent withdrawal, a client deleted or its rules changed (in a transaction)',
    sql: 'DELETE FROM "OidcPayload" WHERE ("grantId" IN (?, ?) OR ("type" = ? AND "id" IN (?, ?)))',
    params: (v) => [v.grantId, 'other-grant', 'Grant', v.grantId, 'other-grant'],
  },
  {
    name: 'client by id',
    where: 'Prisma, clients.ts findClient: each client once per change poll (admin-data cache)',
    sql: 'SELECT * FROM "Client" WHERE ("clientId" = ?) LIMIT ?',
    params: (v) => [v.clientId, 1],
  },
  {
    name: 'admin back-channel logout URI',
    where: 'Prisma, clients.ts isAdminBackchannelLogoutUri: every back-channel logout delivery (outgoing-fetch.ts)',
    sql: 'SELECT COUNT(*) FROM (SELECT "clientId" FROM "Client" WHERE ("backchannelLogoutUri" = ? AND "dynamic" = ?)) AS sub',
    params: (v, kind) => ['https://app1.example.com/backchannel', kind === 'sqlite' ? 0 : false],
  },
  {
    name: 'API by identifier',
    where: 'Prisma, apis.ts findApi: each API once per change poll (admin-data cache)',
    sql: 'SELECT * FROM "ResourceServer" WHERE ("identifier" = ?) LIMIT ?',
    params: (v) => [v.apiIdentifier, 1],
  },
  {
    name: 'change stamp',
    where: 'Prisma, change-stamp.ts readChangeStamp: every change poll of every server',
    sql: 'SELECT "version" FROM "ChangeStamp" WHERE ("id" = ?) LIMIT ?',
    params: () => [1, 1],
  },
  {
    name: 'consent upsert',
    where: 'Prisma, consents.ts saveConsent: every consent given',
    sql: `INSERT INTO "Consent" ("accountId", "clientId", "grantId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)
          ON CONFLICT ("accountId", "clientId") DO UPDATE SET "grantId" = ?, "updatedAt" = ?
          WHERE ("Consent"."accountId" = ? AND "Consent"."clientId" = ?)`,
    params: (v) => [v.accountId, v.clientId, v.grantId, v.now, v.now, v.grantId, v.now, v.accountId, v.clientId],
  },
  {
    name: 'consents of a client',
    where: 'Prisma, consents.ts deleteConsents / listConsents --client: a client deleted or its rules changed',
    sql: 'SELECT "accountId", "clientId", "grantId", "createdAt", "updatedAt" FROM "Consent" WHERE "clientId" = ? ORDER BY "clientId" ASC, "accountId" ASC',
    params: (v) => [v.clientId],
  },
  {
    name: 'consents of an account',
    where: 'Prisma, consents.ts listConsents --account / deleteConsents of an account',
    sql: 'SELECT "accountId", "clientId", "grantId", "createdAt", "updatedAt" FROM "Consent" WHERE "accountId" = ? ORDER BY "clientId" ASC, "accountId" ASC',
    params: (v) => [v.accountId],
  },
  {
    name: 'identity by (provider, subject)',
    where: 'Prisma, accounts.ts findIdentityAccountId: every sign-in (in its transaction)',
    sql: 'SELECT "provider", "subject", "accountId" FROM "FederatedIdentity" WHERE ("provider" = ? AND "subject" = ?) LIMIT ?',
    params: (v) => [v.provider, v.subject, 1],
  },
  {
    name: 'identity by verified email',
    where: 'Prisma, accounts.ts findAccountIdByVerifiedEmail: first sign-in of an identity with a verified email (in its transaction)',
    sql: 'SELECT "provider", "subject", "accountId" FROM "FederatedIdentity" WHERE ("email" = ? AND "emailVerified" = ? AND "provider" <> ?) ORDER BY "createdAt" ASC LIMIT ?',
    params: (v, kind) => [v.email, kind === 'sqlite' ? 1 : true, 'google', 1],
  },
  {
    name: 'identities of an account',
    where: 'Prisma, accounts.ts listIdentities',
    sql: 'SELECT "provider", "subject", "email", "emailVerified" FROM "FederatedIdentity" WHERE "accountId" = ?',
    params: (v) => [v.accountId],
  },
  {
    name: 'purge lease',
    where: 'Prisma, leases.ts acquireLease: every purge interval of every server',
    sql: 'UPDATE "Lease" SET "holder" = ?, "expiresAt" = ?, "updatedAt" = ? WHERE ("name" = ? AND ("holder" = ? OR "expiresAt" <= ?))',
    params: (v) => ['node-1', v.future, v.now, 'purge', 'node-1', v.now],
  },
];

/**
 * Prints the plans and returns { kind, queries: [{ name, where, sql, plans: { variant: lines },
 * flags: { variant: findings } }], flagged: ['name (variant): finding', …] }.
 */
export async function queryPlans(databaseUrl, { log = console.log } = {}) {
  const sqlite = databaseUrl.startsWith('file:');
  const planner = sqlite ? sqlitePlanner(databaseUrl) : await postgresPlanner(databaseUrl);
  const queries = [];
  try {
    const v = await sampleValues(planner.rows, sqlite);
    for (const q of QUERIES) {
      const text = sqlite ? q.sqlite ?? q.sql : q.pg ?? toDollars(q.sql);
      const { plans, flags } = await planner.explain(text, q.params(v, planner.kind), q);
      queries.push({ name: q.name, where: q.where, sql: text.replace(/\s+/g, ' '), plans, flags });
    }
  } finally {
    await planner.close();
  }
  const flagged = queries.flatMap((q) => Object.entries(q.flags).flatMap(([variant, fs]) => fs.map((f) => `${q.name} (${variant}): ${f}`)));
  log(`query plans on ${planner.kind}${planner.note ? ` (${planner.note})` : ''}`);
  for (const q of queries) {
    log(`\n${q.name}: ${q.where}\n  ${q.sql.length > 200 ? `${q.sql.slice(0, 200)}…` : q.sql}`);
    for (const [variant, lines] of Object.entries(q.plans)) {
      log(`  [${variant}]`);
      // SQLite plans a plain INSERT (its conflict check is the key's) as nothing
      for (const line of lines.length ? lines : ['(no table read)']) log(`    ${line}`);
      for (const f of q.flags[variant]) log(`    !! ${f}`);
    }
  }
  log(flagged.length ? `\nflagged:\n${flagged.map((f) => `  ${f}`).join('\n')}` : '\nflagged: none');
  return { kind: planner.kind, queries, flagged };
}

/** `?` placeholders as PostgreSQL's $1, $2, … (the SQL above has no ? in literals) */
function toDollars(sql) {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Real ids to plan with (plans can depend on the values), or stand-ins where a table is empty. */
async function sampleValues(rows, sqlite) {
  const one = async (sql, fallback) => (await rows(sql))[0] ?? fallback;
  const now = new Date();
  const date = (d) => (sqlite ? d.toISOString().replace('Z', '+00:00') : d.toISOString());
  const nowText = date(now);
  const identity = await one('SELECT "provider", "subject", "email" FROM "FederatedIdentity" LIMIT 1', { provider: 'github', subject: '1', email: 'someone@example.com' });
  return {
    now: nowText,
    future: date(new Date(now.getTime() + 3_600_000)),
    accessTokenId: (await one(`SELECT "id" FROM "OidcPayload" WHERE "type" = 'AccessToken' LIMIT 1`, { id: 'an-access-token' })).id,
    refreshTokenId: (await one(`SELECT "id" FROM "OidcPayload" WHERE "type" = 'RefreshToken' LIMIT 1`, { id: 'a-refresh-token' })).id,
    grantId: (await one(`SELECT "id" FROM "OidcPayload" WHERE "type" = 'Grant' LIMIT 1`, { id: 'a-grant' })).id,
    clientId: (await one('SELECT "clientId" FROM "Client" LIMIT 1', { clientId: 'a-client' })).clientId,
    apiIdentifier: (await one('SELECT "identifier" FROM "ResourceServer" LIMIT 1', { identifier: 'https://api.example.com' })).identifier,
    accountId: (await one('SELECT "id" FROM "Account" LIMIT 1', { id: 'an-account' })).id,
    provider: identity.provider,
    subject: identity.subject,
    email: identity.email ?? 'someone@example.com',
  };
}

// ---------------------------------------------------------------- SQLite

/**
 * EXPLAIN QUERY PLAN. "SCAN t" reads all of table t, "SCAN t USING INDEX i" all of index i
 * (in its order, to stop early: a LIMIT stops it only once enough rows matched);
 * "SEARCH" seeks. ANY(col) in a SEARCH is a skip-scan: one seek per distinct value of the
 * index's first column, which the planner only dares with statistics.
 */
function sqlitePlanner(url) {
  const db = new Sqlite(resolve(url.replace(/^file:/, '').replace(/\?.*$/, '')), { fileMustExist: true, timeout: 5000 });
  const analyzed = Boolean(db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'`).get()) && Boolean(db.prepare('SELECT 1 FROM sqlite_stat1 LIMIT 1').get());
  const planOf = (sql, params) => {
    const steps = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params);
    const depth = new Map([[0, -1]]);
    return steps.map((s) => {
      depth.set(s.id, (depth.get(s.parent) ?? -1) + 1);
      return `${'  '.repeat(depth.get(s.id))}${s.detail}`;
    });
  };
  const flagsOf = (lines) =>
    lines.flatMap((line) => {
      const m = /^\s*SCAN (\S+)(?: USING (?:COVERING )?INDEX (\S+))?/.exec(line);
      if (!m || !LARGE.has(m[1])) return [];
      return [m[2] ? `reads all of index ${m[2]} of ${m[1]}` : `reads all of table ${m[1]}`];
    });
  return {
    kind: 'sqlite',
    note: analyzed ? 'planned with the statistics of ANALYZE, and without, as Gatehouse leaves a database' : 'no statistics: as Gatehouse leaves a database',
    rows: async (sql) => db.prepare(sql).all(),
    async explain(sql, params) {
      const plans = {};
      if (analyzed) {
        plans['ANALYZEd'] = planOf(sql, params);
        // the statistics gone for this connection only: deleted in a transaction, reloaded
        // (ANALYZE sqlite_schema), planned, rolled back, reloaded
        db.exec('BEGIN');
        try {
          db.exec('DELETE FROM sqlite_stat1');
          db.exec('ANALYZE sqlite_schema');
          plans['no statistics'] = planOf(sql, params);
        } finally {
          db.exec('ROLLBACK');
          db.exec('ANALYZE sqlite_schema');
        }
      } else {
        plans['no statistics'] = planOf(sql, params);
      }
      return { plans, flags: Object.fromEntries(Object.entries(plans).map(([k, lines]) => [k, flagsOf(lines)])) };
    },
    async close() {
      db.close();
    },
  };
}

// ---------------------------------------------------------------- PostgreSQL

/**
 * EXPLAIN, with the values (a custom plan, as Prisma's unnamed statements get), and for
 * hot-statements.ts's named statements also the generic plan PostgreSQL may switch to.
 * Flagged: a Seq Scan of a large table, and an index scan with no condition on the index's
 * first column (it reads the whole index; PostgreSQL 15 has no skip-scan).
 */
async function postgresPlanner(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const sizes = new Map((await client.query(`SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`)).rows.map((r) => [r.relname, Number(r.reltuples)]));
  const firstColumn = new Map(
    (await client.query(`SELECT c.relname AS index, a.attname AS column FROM pg_index i
                          JOIN pg_class c ON c.oid = i.indexrelid
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]`)).rows.map((r) => [r.index, r.column]),
  );
  const large = (table) => LARGE.has(table) && (sizes.get(table) ?? 0) >= PG_SMALL;
  const mentions = (cond, column) => new RegExp(`(^|[^\\w])${column}\\s*(=|<|>|IS\\b|~)`).test(cond.replaceAll('"', ''));
  const flagsOf = (node, out = []) => {
    const table = node['Relation Name'];
    if (node['Node Type'] === 'Seq Scan' && large(table)) out.push(`reads all of table ${table} (Seq Scan, ${sizes.get(table)} rows)`);
    if (/Index/.test(node['Node Type']) && node['Index Name']) {
      const index = node['Index Name'];
      const cond = node['Index Cond'] ?? '';
      const owner = table ?? [...sizes.keys()].find((t) => index.startsWith(`${t}_`));
      if (large(owner) && !mentions(cond, firstColumn.get(index))) out.push(`reads all of index ${index} (${cond ? `condition not on its first column, ${firstColumn.get(index)}` : 'no index condition'})`);
    }
    for (const child of node.Plans ?? []) flagsOf(child, out);
    return out;
  };
  const explain = async (sql, params) => {
    const text = (await client.query({ text: `EXPLAIN ${sql}`, values: params })).rows.map((r) => r['QUERY PLAN']);
    const [{ 'QUERY PLAN': [json] }] = (await client.query({ text: `EXPLAIN (FORMAT JSON) ${sql}`, values: params })).rows;
    return { text, flags: flagsOf(json.Plan) };
  };
  // EXECUTE takes no bound parameters: its arguments go in as literals
  const literal = (v) => (v === null ? 'NULL' : Array.isArray(v) ? `ARRAY[${v.map(literal).join(', ')}]` : typeof v === 'string' ? client.escapeLiteral(v) : String(v));
  return {
    kind: 'postgresql',
    note: `statistics as of the last ANALYZE; tables under ${PG_SMALL} rows not flagged`,
    rows: async (sql) => (await client.query(sql)).rows,
    async explain(sql, params, q) {
      const custom = await explain(sql, params);
      const plans = { 'with its values': custom.text };
      const flags = { 'with its values': custom.flags };
      if (q.hot) {
        // PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): a prepared statement made to plan generically
        await client.query('SET plan_cache_mode = force_generic_plan');
        try {
          await client.query(`PREPARE gatehouse_query_plan AS ${sql}`);
          const generic = await explain(`EXECUTE gatehouse_query_plan(${params.map(literal).join(', ')})`, []);
          plans['generic plan'] = generic.text;
          flags['generic plan'] = generic.flags;
        } finally {
          await client.query('DEALLOCATE ALL');
          await client.query('RESET plan_cache_mode');
        }
      }
      return { plans, flags };
    },
    async close() {
      await client.end();
    },
  };
}

// ---------------------------------------------------------------- standalone

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const databaseUrl = process.argv[2];
  if (!databaseUrl) {
    process.stderr.write('usage: node bench/query-plans.mjs <databaseUrl>\n');
    process.exit(2);
  }
  const { flagged } = await queryPlans(databaseUrl);
  process.exitCode = flagged.length ? 1 : 0;
}
