import Sqlite from 'better-sqlite3';
import type pg from 'pg';
import { DatabaseUnavailableError } from './errors.js';

/**
 * The hottest read of the server: oidc-provider artifacts by (type, id), for
 * every token lookup. It skips Prisma's query compiler (about half the CPU of
 * an introspection went there) with one prepared statement per database.
 * Prisma still writes these rows; this only reads, in the same shape.
 */

export interface PayloadRow {
  type: string;
  id: string;
  payload: Record<string, unknown>;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

/** Rows whose type is one of `types` and whose id is one of `ids`. */
export type PayloadLookup = (types: string[], ids: string[]) => Promise<PayloadRow[]>;

/**
 * The statement is fixed and its inputs are storable text (oidc-payloads.ts
 * checks), so a failure here is the database being away or locked, not the
 * request: it becomes DatabaseUnavailableError, like Prisma's codes do.
 */
async function unavailableOnFailure<T>(read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new DatabaseUnavailableError({ cause: err });
  }
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** SQLite: its own connection to the file (WAL or not, reads wait out a writer's lock up to 5 s). */
export function sqlitePayloadLookup(path: string): { lookup: PayloadLookup; close(): void } {
  let connection: Sqlite.Database | undefined;
  const statements = new Map<string, Sqlite.Statement>();
  const statement = (types: number, ids: number) => {
    connection ??= new Sqlite(path, { fileMustExist: true, timeout: 5000 });
    const key = `${types}/${ids}`;
    let s = statements.get(key);
    if (!s) {
      s = connection.prepare(`SELECT type, id, payload, expiresAt, consumedAt FROM OidcPayload WHERE type IN (${marks(types)}) AND id IN (${marks(ids)})`);
      statements.set(key, s);
    }
    return s;
  };
  return {
    async lookup(types, ids) {
      const rows = await unavailableOnFailure(() => statement(types.length, ids.length).all(...types, ...ids) as { type: string; id: string; payload: string; expiresAt: string | null; consumedAt: string | null }[]);
      return rows.map((r) => ({
        type: r.type,
        id: r.id,
        payload: JSON.parse(r.payload) as Record<string, unknown>,
        // Prisma stores SQLite DateTimes as ISO 8601 text
        expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt),
        consumedAt: r.consumedAt === null ? null : new Date(r.consumedAt),
      }));
    },
    close() {
      connection?.close();
    },
  };
}

/** PostgreSQL: a named prepared statement on the pool Prisma uses; times as epoch ms (the columns have no time zone). */
export function postgresPayloadLookup(pool: pg.Pool): PayloadLookup {
  return async (types, ids) => {
    const { rows } = await unavailableOnFailure(() => pool.query<{ type: string; id: string; payload: Record<string, unknown>; expires: number | null; consumed: number | null }>({
      name: 'gatehouse-payloads',
      text: `SELECT type, id, payload,
               (extract(epoch from "expiresAt" AT TIME ZONE 'UTC') * 1000)::float8 AS expires,
               (extract(epoch from "consumedAt" AT TIME ZONE 'UTC') * 1000)::float8 AS consumed
             FROM "OidcPayload" WHERE type = ANY($1::text[]) AND id = ANY($2::text[])`,
      values: [types, ids],
    }));
    return rows.map((r) => ({
      type: r.type,
      id: r.id,
      payload: r.payload,
      expiresAt: r.expires === null ? null : new Date(r.expires),
      consumedAt: r.consumed === null ? null : new Date(r.consumed),
    }));
  };
}
