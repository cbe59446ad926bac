import { DEFAULT_DATABASE_URL } from './defaults.js';

/**
 * DATABASE_URL's one rule, without zod: the server's configuration schema
 * checks it with the rest, and the CLI reads the database alone through this
 * (zod and the whole schema cost a command about 0.1 s of start-up).
 */

/** A SQLite file (file:) or a PostgreSQL server. */
export const DATABASE_URL_PATTERN = /^(file:|postgres:\/\/|postgresql:\/\/)/;

export const DATABASE_URL_MESSAGE = 'must start with file: (SQLite) or postgres:// (PostgreSQL)';

/** The database a URL names; the kind follows from the scheme. */
export function databaseOfUrl(url: string): { url: string; kind: 'sqlite' | 'postgresql' } {
  return { url, kind: url.startsWith('file:') ? 'sqlite' : 'postgresql' };
}

/** DATABASE_URL's database (unset or empty: the default), or what is wrong with it. */
export function readDatabaseUrl(value: string | undefined): { url: string; kind: 'sqlite' | 'postgresql' } | { problem: string } {
  const url = value || DEFAULT_DATABASE_URL;
  return DATABASE_URL_PATTERN.test(url) ? databaseOfUrl(url) : { problem: `DATABASE_URL: ${DATABASE_URL_MESSAGE}` };
}
