// Fills a migrated Gatehouse database with a large data set for the benchmarks (issue 12):
// clients, accounts with their identities and consents, and oidc-provider's artifacts (grants,
// refresh tokens, opaque access tokens) in the exact rows Gatehouse's adapter writes
// (src/storage/oidc-payloads.ts, copied from real ones). Bulk inserts straight into the
// tables, not the CLI: a million rows one by one through Prisma would take an hour.
//   import { seedLarge } from './seed-large.mjs';
//   const { seconds, rows, sample } = await seedLarge({ databaseUrl, expired: 1_000_000 });
// Every seeded client authenticates with SEED_CLIENT_SECRET (client_secret_basic); `sample`
// names a few seeded rows to look up.
// Standalone: node bench/seed-large.mjs <databaseUrl> [--clients n] [--grants n]
//   [--access-tokens n] [--expired n] [--accounts n] [--analyze-sqlite]
//   (on a database `gatehouse migrate` made: DATABASE_URL=<databaseUrl> node bin/gatehouse.js migrate)
import { isAscii } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
import argon2 from 'argon2';

/** the secret of every seeded client */
export const SEED_CLIENT_SECRET = 'seeded-client-secret-0123456789abcdefghijklmnopq';
/** the API (audience) of seeded clients and tokens: the one bench/run.mjs creates */
export const SEED_RESOURCE = 'https://bench.example.com';

const DAY = 86_400_000; // ms
/** rows per INSERT on PostgreSQL, per transaction on SQLite */
const BATCH = 10_000;

/**
 * Inserts, into the migrated database at `databaseUrl` (`file:…` or `postgresql://…`):
 * `clients` confidential clients, `accounts` accounts (one GitHub identity each), `grants`
 * Grants each with one RefreshToken and one Consent, `accessTokens` opaque AccessTokens of
 * those grants, all expiring in about 30 days, and `expired` more AccessTokens that expired
 * within the last day (for the purge). Returns the time taken, the rows per table (OidcPayload
 * rows per type) and a few ids of seeded rows.
 */
export async function seedLarge({
  databaseUrl,
  clients = 100_000,
  grants = 1_000_000,
  accessTokens = 1_000_000,
  expired = 0,
  accounts = 50_000,
  resource = SEED_RESOURCE,
  scope = 'read',
  // SQLite: leave ANALYZE statistics (see sqliteStore's finish for why not by default)
  analyzeSqlite = false,
  log = console.log,
} = {}) {
  if (!databaseUrl) throw new Error('seedLarge: databaseUrl is required');
  const started = performance.now();
  const sqlite = databaseUrl.startsWith('file:');
  // the same argon2id parameters as src/services/client-secrets.ts; hashed once, shared by all
  const secretHash = await argon2.hash(SEED_CLIENT_SECRET, { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
  const options = { clients, grants, accessTokens, expired, accounts, resource, scope, secretHash, now: Date.now(), dialect: sqlite ? 'sqlite' : 'postgresql' };
  const tables = dataSet(options).tables.filter((t) => t.count);
  // rows are made on another thread (another core) while this one writes the last batch
  const source = workerSource(options);
  const store = sqlite ? sqliteStore(databaseUrl, { analyze: analyzeSqlite }) : await postgresStore(databaseUrl);
  const rows = {};
  let sample;
  try {
    for (const t of tables) {
      const t0 = performance.now();
      let done = 0;
      let next = 0.1;
      const inserted = await store.insert(t, source.next, (n) => {
        done += n;
        // a line per tenth, so a long seed shows it is moving
        if (done >= next * t.count || done === t.count) {
          log(`seed: ${t.label} ${done.toLocaleString('en')}/${t.count.toLocaleString('en')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
          next = Math.floor((done / t.count) * 10 + 1) / 10;
        }
      });
      rows[t.label] = (rows[t.label] ?? 0) + inserted;
    }
    sample = await source.sample();
    // servers cache clients; the stamp is what admin writes bump to make them look again
    await store.bumpChangeStamp();
    const t0 = performance.now();
    await store.finish();
    log(`seed: ${store.finishing} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    await source.close();
    await store.close();
  }
  const seconds = Math.round(performance.now() - started) / 1000;
  log(`seed: done in ${seconds} s: ${Object.entries(rows).map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ')}`);
  return { seconds, rows, sample };
}

// ---------------------------------------------------------------- the data

/** base64url's characters in byte order: ids made of them sort as their numbers do */
const SORTED_BASE64URL = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

/**
 * `count` ids of `length` characters (base64url, or hex), random but ascending: `id(i)` is a
 * prefix that grows with i, spread over its whole range, then random characters. Inserted in
 * order they append to each B-tree instead of landing on a random page: on SQLite a million
 * random keys in two indexes take 70 s, in order 20 s (measured). Lookups cannot tell the
 * difference. Kept as raw bytes (a million ids cost 30 MB, not 100), made on first use.
 */
function sortedIds(count, length, encoding = 'base64url') {
  const digits = encoding === 'hex' ? '0123456789abcdef' : SORTED_BASE64URL;
  const width = encoding === 'hex' ? 6 : 5;
  const span = digits.length ** width;
  if (count > span) throw new Error(`seedLarge: at most ${span} ids of a kind`);
  const rest = length - width;
  const bytes = encoding === 'hex' ? Math.ceil(rest / 2) : Math.ceil((rest * 3) / 4);
  let buf;
  return (i) => {
    buf ??= randomBytes(count * bytes);
    let n = Math.floor(((i + 0.5) * span) / count);
    let prefix = '';
    for (let d = 0; d < width; d++, n = Math.floor(n / digits.length)) prefix = digits[n % digits.length] + prefix;
    return prefix + buf.toString(encoding, i * bytes, (i + 1) * bytes).slice(0, rest);
  };
}

/**
 * The rows, per table: `row(i)` makes row i (an object by column name), so a million rows
 * are made a batch at a time. Ids look like oidc-provider's (43 base64url characters) and
 * Gatehouse's (24 hex for clients, 22 base64url for accounts); DateTimes are text in the
 * format of the dialect, JSON columns JSON text.
 */
function dataSet({ clients, grants, accessTokens, expired, accounts, resource, scope, secretHash, now, dialect }) {
  if (grants && (!clients || !accounts)) throw new Error('seedLarge: grants need clients and accounts');
  // Grant g belongs to account g / perAccount (in order: consents append to their key) and
  // to a client that no other grant of that account has (Consent keeps one grant per pair).
  const perAccount = Math.ceil(grants / Math.max(accounts, 1));
  if (perAccount > clients) throw new Error('seedLarge: more grants per account than clients');
  const grantAccount = (g) => Math.floor(g / perAccount);
  const grantClient = (g) => (g + 7 * grantAccount(g)) % clients;

  const clientId = sortedIds(clients, 24, 'hex');
  const accountId = sortedIds(accounts, 22);
  const grantId = sortedIds(grants, 43);
  const refreshTokenId = sortedIds(grants, 43);
  const accessTokenId = sortedIds(accessTokens, 43);
  const expiredId = sortedIds(expired, 43);
  const sessionUid = sortedIds(grants, 43);
  const nonce = sortedIds(grants, 43);

  // Prisma's SQLite adapter writes ISO 8601 with "+00:00" and compares DateTimes as text: the
  // purge's `expiresAt < ?` only works on that exact format. PostgreSQL parses it.
  const date = dialect === 'sqlite' ? (ms) => new Date(ms).toISOString().replace('Z', '+00:00') : (ms) => new Date(ms).toISOString();
  const created = date(now - 90 * DAY);
  const sec = (ms) => Math.floor(ms / 1000);
  // Live artifacts expire in about 30 days, spread over a day (ms apart) so the expiresAt
  // index holds distinct values; in insertion order, so the index is appended to. Expired
  // ones are spread over the last day out of id order: the purge, which goes by expiresAt,
  // then deletes ids scattered over the table, as it would in a real one.
  const live = (i) => now + 30 * DAY - (i % DAY);
  const past = (i) => now - 60_000 - ((i * 7_919) % DAY);

  // Payloads as oidc-provider 9 saves them (field order included) after a GitHub sign-in with
  // offline access. JSON by hand: ids need no escaping, and JSON.stringify of an object per
  // row was a fifth of the seed.
  const aud = JSON.stringify(resource);
  const scopes = JSON.stringify(scope);
  const grantScopes = JSON.stringify(`openid email offline_access ${scope}`);
  const accessToken = (g, jti, expiresAt, ttl) => {
    const exp = sec(expiresAt);
    const gid = grantId(g);
    return {
      id: jti,
      type: 'AccessToken',
      payload: `{"iat":${exp - ttl},"exp":${exp},"accountId":"${accountId(grantAccount(g))}","grantId":"${gid}","gty":"authorization_code","sessionUid":"${sessionUid(g)}","kind":"AccessToken","jti":"${jti}","clientId":"${clientId(grantClient(g))}","aud":${aud},"scope":${scopes}}`,
      grantId: gid,
      expiresAt: date(expiresAt),
    };
  };
  const payloadTypes = { id: 'text', type: 'text', payload: 'json', grantId: 'text', expiresAt: 'date' };

  const tables = [
    {
      label: 'Client',
      table: 'Client',
      count: clients,
      types: {
        clientId: 'text', name: 'text', secretHash: 'text', tokenEndpointAuthMethod: 'text', grantTypes: 'json', redirectUris: 'json',
        scopes: 'json', resources: 'json', firstParty: 'bool', postLogoutRedirectUris: 'json', backchannelLogoutUri: 'text',
        requirePar: 'bool', dynamic: 'bool', metadata: 'json', createdAt: 'date', updatedAt: 'date',
      },
      row: (i) => {
        const site = `https://app${i}.example.com`;
        // one in ten registered itself (RFC 7591) and brought display metadata
        const dynamic = i % 10 === 9;
        return {
          clientId: clientId(i),
          name: `Seeded app ${i}`,
          secretHash,
          tokenEndpointAuthMethod: 'client_secret_basic',
          grantTypes: '["authorization_code","refresh_token","client_credentials"]',
          redirectUris: `["${site}/callback"]`,
          scopes: '[]',
          resources: `[${aud}]`,
          firstParty: i % 100 === 0,
          postLogoutRedirectUris: `["${site}/"]`,
          backchannelLogoutUri: null,
          requirePar: false,
          dynamic,
          metadata: dynamic ? `{"client_uri":"${site}","logo_uri":"${site}/logo.png","contacts":["admin@app${i}.example.com"]}` : '{}',
          createdAt: created,
          updatedAt: created,
        };
      },
    },
    {
      label: 'Account',
      table: 'Account',
      count: accounts,
      types: { id: 'text', email: 'text', emailVerified: 'bool', name: 'text', username: 'text', picture: 'text', createdAt: 'date', updatedAt: 'date' },
      row: (i) => ({
        id: accountId(i), email: `user${i}@example.com`, emailVerified: true, name: `User ${i}`, username: `user${i}`,
        picture: `https://avatars.example.com/u/${i}`, createdAt: created, updatedAt: created,
      }),
    },
    {
      label: 'FederatedIdentity',
      table: 'FederatedIdentity',
      count: accounts,
      types: { provider: 'text', subject: 'text', accountId: 'text', email: 'text', emailVerified: 'bool', profile: 'json', createdAt: 'date', updatedAt: 'date' },
      row: (i) => {
        const id = 10_000_000 + i; // GitHub's numeric user id; `subject` holds it as text
        return {
          provider: 'github', subject: String(id), accountId: accountId(i), email: `user${i}@example.com`, emailVerified: true,
          profile: `{"id":${id},"login":"user${i}","name":"User ${i}","email":"user${i}@example.com","avatar_url":"https://avatars.example.com/u/${i}"}`,
          createdAt: created, updatedAt: created,
        };
      },
    },
    {
      label: 'Consent',
      table: 'Consent',
      count: grants,
      types: { accountId: 'text', clientId: 'text', grantId: 'text', createdAt: 'date', updatedAt: 'date' },
      row: (g) => ({ accountId: accountId(grantAccount(g)), clientId: clientId(grantClient(g)), grantId: grantId(g), createdAt: created, updatedAt: created }),
    },
    {
      label: 'Grant',
      table: 'OidcPayload',
      count: grants,
      types: payloadTypes,
      row: (g) => {
        const expiresAt = live(g);
        const exp = sec(expiresAt);
        const jti = grantId(g);
        return {
          id: jti,
          type: 'Grant',
          payload: `{"iat":${exp - 30 * 86_400},"exp":${exp},"accountId":"${accountId(grantAccount(g))}","clientId":"${clientId(grantClient(g))}","kind":"Grant","jti":"${jti}","openid":{"scope":"openid email offline_access"},"resources":{${aud}:${scopes}}}`,
          grantId: null,
          expiresAt: date(expiresAt),
        };
      },
    },
    {
      label: 'RefreshToken',
      table: 'OidcPayload',
      count: grants,
      types: payloadTypes,
      row: (g) => {
        const expiresAt = live(g);
        const exp = sec(expiresAt);
        const iat = exp - 30 * 86_400;
        const jti = refreshTokenId(g);
        const gid = grantId(g);
        return {
          id: jti,
          type: 'RefreshToken',
          payload: `{"iat":${iat},"exp":${exp},"accountId":"${accountId(grantAccount(g))}","amr":["github"],"authTime":${iat},"grantId":"${gid}","gty":"authorization_code","nonce":"${nonce(g)}","resource":${aud},"rotations":0,"scope":${grantScopes},"sessionUid":"${sessionUid(g)}","kind":"RefreshToken","jti":"${jti}","clientId":"${clientId(grantClient(g))}","iiat":${iat}}`,
          grantId: gid,
          expiresAt: date(expiresAt),
        };
      },
    },
    {
      label: 'AccessToken',
      table: 'OidcPayload',
      count: grants ? accessTokens : 0,
      types: payloadTypes,
      row: (k) => accessToken(k % grants, accessTokenId(k), live(k), 30 * 86_400),
    },
    {
      // counted with the live ones in `rows`
      label: 'AccessToken',
      table: 'OidcPayload',
      count: grants ? expired : 0,
      types: payloadTypes,
      row: (k) => accessToken(k % grants, expiredId(k), past(k), 600),
    },
  ];
  const some = (count, id) => Array.from({ length: Math.min(count, 10) }, (_, i) => id(Math.floor((i * count) / Math.min(count, 10))));
  return {
    tables,
    sample: () => ({
      clientIds: some(clients, clientId),
      accountIds: some(accounts, accountId),
      grantIds: some(grants, grantId),
      refreshTokenIds: some(grants, refreshTokenId),
      accessTokenIds: some(grants ? accessTokens : 0, accessTokenId),
    }),
  };
}

/**
 * Every batch of every table, in the order seedLarge inserts them, in COPY's text format:
 * what PostgreSQL's COPY reads, and what the SQLite store takes apart again. Text in a
 * buffer, not rows as objects: a buffer moves to the main thread without a copy, while
 * cloning 10,000 objects (and collecting them) cost both threads more than making them.
 */
function* batches(data) {
  for (const t of data.tables) {
    for (let start = 0; start < t.count; start += BATCH) yield copyData(t, start, Math.min(BATCH, t.count - start));
  }
}

/** a value in COPY's text format: \N is NULL; backslash, tab and line breaks escaped */
function copyValue(v) {
  if (v === null) return '\\N';
  if (typeof v !== 'string') return v === true ? 't' : v === false ? 'f' : String(v);
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]) : v;
}

/**
 * Rows start..start+n-1 of a table in COPY's text format (a line per row, columns in the order
 * of `types`), written into one buffer as they are made, so each row's strings die young (a
 * batch of rows kept alive until sent had the worker spend 45 % of its time in GC).
 */
function copyData(t, start, n) {
  const names = Object.keys(t.types);
  let buf = Buffer.allocUnsafeSlow(n * 1024);
  let length = 0;
  for (let i = start; i < start + n; i++) {
    const row = t.row(i);
    let line = copyValue(row[names[0]]);
    for (let c = 1; c < names.length; c++) line += `\t${copyValue(row[names[c]])}`;
    line += '\n';
    if (buf.length - length < line.length * 3) {
      const bigger = Buffer.allocUnsafeSlow(buf.length * 2 + line.length * 3);
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    length += buf.write(line, length);
  }
  return buf.subarray(0, length);
}

/** Batches a row maker makes ahead of the inserts: enough to never wait, few enough to hold. */
const AHEAD = 3;

/** Rows made by a worker thread (this module, below), up to AHEAD batches ahead. */
function workerSource(options) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { seedLarge: options } });
  const messages = [];
  let failure;
  let wake = () => {};
  worker.on('message', (m) => {
    messages.push(m);
    wake();
  });
  worker.on('error', (err) => {
    failure = err;
    wake();
  });
  worker.on('exit', (code) => {
    failure ??= new Error(`seedLarge: the row maker stopped (exit code ${code})`);
    wake();
  });
  const receive = async () => {
    while (!messages.length) {
      if (failure) throw failure;
      await new Promise((r) => (wake = r));
    }
    return messages.shift();
  };
  // the first message is the sample
  const sample = receive().then((m) => m.sample);
  sample.catch(() => {});
  return {
    async next() {
      await sample;
      const { batch } = await receive();
      worker.postMessage('next');
      // a transferred Buffer arrives as a Uint8Array
      return Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
    },
    sample: () => sample,
    close: () => worker.terminate(),
  };
}

// ---------------------------------------------------------------- SQLite

/**
 * better-sqlite3 on its own connection: one prepared INSERT run per row, BATCH rows per
 * transaction, as Prisma's SQLite adapter stores values (JSON as text, booleans 0/1,
 * DateTimes as ISO 8601 text). WAL mode stays: journal_mode OFF or MEMORY measured no faster.
 */
function sqliteStore(url, { analyze }) {
  const db = new Sqlite(resolve(url.replace(/^file:/, '').replace(/\?.*$/, '')), { fileMustExist: true, timeout: 5000 });
  // the pages being appended to, and the two indexes filled out of order, stay in memory
  db.pragma('cache_size = -262144');
  // a crash mid-seed leaves a bench database to throw away anyway
  db.pragma('synchronous = OFF');
  // a value of COPY's text format as better-sqlite3 binds it
  const unescape = (v) => v.replace(/\\(.)/g, (_, c) => ({ t: '\t', n: '\n', r: '\r' })[c] ?? c);
  const value = (v, type) => (v === '\\N' ? null : type === 'bool' ? (v === 't' ? 1 : 0) : v.includes('\\') ? unescape(v) : v);
  return {
    finishing: analyze ? 'ANALYZE, WAL checkpoint' : 'WAL checkpoint',
    async insert(t, next, progress) {
      const names = Object.keys(t.types);
      const types = names.map((c) => t.types[c]);
      const insert = db.prepare(`INSERT INTO "${t.table}" (${names.map((c) => `"${c}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`);
      const write = db.transaction((text) => {
        const args = new Array(names.length);
        let rows = 0;
        for (let at = 0; at < text.length; rows++) {
          for (let c = 0; c < names.length; c++) {
            const end = text.indexOf(c === names.length - 1 ? '\n' : '\t', at);
            args[c] = value(text.slice(at, end), types[c]);
            at = end + 1;
          }
          insert.run(args);
        }
        return rows;
      });
      for (let done = 0; done < t.count; ) {
        const data = await next();
        // ASCII (every value but an odd resource name) decodes as latin1 at memcpy speed; as
        // UTF-8 it was a sixth of this thread's time
        const rows = write(data.toString(isAscii(data) ? 'latin1' : 'utf8'));
        done += rows;
        progress(rows);
      }
      return t.count;
    },
    async bumpChangeStamp() {
      db.prepare(`INSERT INTO "ChangeStamp" ("id", "version", "updatedAt") VALUES (1, 1, ?)
                  ON CONFLICT ("id") DO UPDATE SET "version" = "version" + 1, "updatedAt" = excluded."updatedAt"`).run(new Date().toISOString().replace('Z', '+00:00'));
    },
    async finish() {
      // No ANALYZE unless asked: Gatehouse never runs it (nor PRAGMA optimize), so a real
      // database has no sqlite_stat1, and its planner takes every index as selective. With
      // statistics it plans some statements differently (deleteGrants' grantId IN (…) becomes
      // a skip-scan instead of a scan of the whole table): the bench would measure plans no
      // deployment gets. bench/query-plans.mjs shows both.
      if (analyze) db.exec('ANALYZE');
      // the server's first checkpoint would otherwise copy the whole seed while it serves
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    async close() {
      db.close();
    },
  };
}

// ---------------------------------------------------------------- PostgreSQL

/**
 * `COPY … FROM STDIN` of one buffer, through pg's extension point for custom queries (the one
 * pg-copy-streams uses), so no new dependency. Calls back with { rowCount }.
 */
class CopyFrom {
  constructor(text, data) {
    this.text = text;
    this.data = data;
    this.rowCount = 0;
  }
  submit(connection) {
    connection.query(this.text);
  }
  handleCopyInResponse(connection) {
    connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }
  handleCommandComplete(msg) {
    this.rowCount = Number(msg.text.split(' ')[1]); // "COPY 10000"
  }
  handleError(err) {
    this.#done(err);
  }
  handleReadyForQuery() {
    this.#done(null, { rowCount: this.rowCount });
  }
  handleRowDescription() {}
  handleDataRow() {}
  handleEmptyQuery() {}
  handlePortalSuspended() {}
  handleCopyData() {}
  #done(err, result) {
    const callback = this.callback;
    this.callback = undefined;
    callback?.(err, result);
  }
}

/**
 * pg: COPY … FROM STDIN of BATCH rows at a time, on two connections at once. COPY takes half
 * the server's time of INSERT … SELECT FROM json_to_recordset($1), and a third of unnest($1::text[],
 * …, $n::jsonb[]) (100,000 access tokens: 2.0 s, 4.7 s, 7.0 s); the payload is parsed once.
 */
async function postgresStore(url) {
  // seed data may be lost in a crash: commits do not wait for the WAL flush
  const pool = new pg.Pool({ connectionString: url, max: 2, options: '-c synchronous_commit=off' });
  const tables = new Set();
  return {
    finishing: 'ANALYZE',
    async insert(t, next, progress) {
      tables.add(t.table);
      // DateTimes go in as ISO text: timestamp(3) ignores the "Z" and holds UTC without a zone,
      // as Prisma writes it
      const copy = `COPY "${t.table}" (${Object.keys(t.types).map((c) => `"${c}"`).join(', ')}) FROM STDIN`;
      const inFlight = new Set();
      let inserted = 0;
      let failure;
      for (let done = 0; done < t.count && !failure; ) {
        const data = await next();
        const n = Math.min(BATCH, t.count - done);
        done += n;
        const q = new Promise((ok, fail) => pool.query(new CopyFrom(copy, data), (err, r) => (err ? fail(err) : ok(r)))).then(
          (r) => {
            inserted += r.rowCount;
            progress(n);
          },
          (err) => {
            failure ??= err;
          },
        );
        inFlight.add(q);
        q.finally(() => inFlight.delete(q));
        if (inFlight.size >= 2) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      return inserted;
    },
    async bumpChangeStamp() {
      await pool.query(`INSERT INTO "ChangeStamp" ("id", "version", "updatedAt") VALUES (1, 1, now() AT TIME ZONE 'UTC')
                        ON CONFLICT ("id") DO UPDATE SET "version" = "ChangeStamp"."version" + 1, "updatedAt" = excluded."updatedAt"`);
    },
    async finish() {
      // The statistics a real database has: autovacuum analyzes a table after it grew, but
      // at a moment of its choosing, and a bench must not have its plans change halfway
      await pool.query(`ANALYZE ${[...tables].map((t) => `"${t}"`).join(', ')}`);
    },
    async close() {
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------- entry points

// the row maker of workerSource (module code below every declaration it uses)
if (!isMainThread && workerData?.seedLarge) {
  const data = dataSet(workerData.seedLarge);
  let credits = AHEAD;
  let wake = () => {};
  parentPort.on('message', () => {
    credits += 1;
    wake();
  });
  parentPort.postMessage({ sample: data.sample() });
  for (const batch of batches(data)) {
    while (!credits) await new Promise((r) => (wake = r));
    credits -= 1;
    // the buffer moves to the main thread instead of being copied
    parentPort.postMessage({ batch }, [batch.buffer]);
  }
}

if (isMainThread && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values: opt, positionals: [databaseUrl] } = parseArgs({
    allowPositionals: true,
    options: {
      clients: { type: 'string' },
      grants: { type: 'string' },
      'access-tokens': { type: 'string' },
      expired: { type: 'string' },
      accounts: { type: 'string' },
      'analyze-sqlite': { type: 'boolean' },
    },
  });
  const num = (s) => (s === undefined ? undefined : Number(s.replaceAll('_', '')));
  const result = await seedLarge({
    databaseUrl,
    clients: num(opt.clients),
    grants: num(opt.grants),
    accessTokens: num(opt['access-tokens']),
    expired: num(opt.expired),
    accounts: num(opt.accounts),
    analyzeSqlite: opt['analyze-sqlite'],
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
