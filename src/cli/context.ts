import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { readDatabaseUrl } from '../common/database-url.js';
import type { Database } from '../storage/database.js';

/*
 * The configuration's schema (zod) and the storage are imported when a command
 * runs, not with the command tables: `gatehouse --help` and a usage error load
 * neither, and a command that only touches the database never loads zod here.
 */

/** A failure to report in one line (or one line per problem) and exit non-zero. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad flags or arguments: exit code 2. */
export const usageError = (message: string) => new CliError(message, 2);

export interface Output {
  json: boolean;
  /** prints a value: JSON when --json, else the human text */
  print(value: unknown, human: () => string): void;
}

/**
 * Human output with control characters shown, not obeyed: text an app
 * registered itself (a client name, metadata) could otherwise clear the
 * operator's screen or fake lines (ANSI escapes). Newlines and tabs stay.
 */
export function printable(text: string): string {
  // C0 but tab and newline, DEL, C1
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function output(json: boolean): Output {
  return {
    json,
    print(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${printable(human())}\n`);
    },
  };
}

/** Reads .env, when there is one, into the environment. */
function loadEnv(): void {
  if (existsSync('.env')) process.loadEnvFile('.env');
}

/** DATABASE_URL alone, for commands that only touch the database (read without the configuration's schema). */
export function databaseConfig(): Config['database'] {
  loadEnv();
  const database = readDatabaseUrl(process.env.DATABASE_URL);
  if ('problem' in database) throw new CliError(database.problem);
  return database;
}

/** The whole server configuration, for commands that build oidc-provider objects; problems become one CLI error. */
export async function serverConfig(): Promise<Config> {
  const { ConfigError, parseConfig } = await import('../config.js');
  loadEnv();
  try {
    return parseConfig(process.env, () => randomBytes(32).toString('base64url'));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.problems.join('; '));
    throw err;
  }
}

/**
 * Opens the database from DATABASE_URL (or .env). It must exist and be fully
 * migrated: only `gatehouse migrate` (and the server's start) creates or
 * migrates one, so a wrong path or folder fails here, in one line, instead of
 * leaving a new empty database behind.
 */
export async function withDatabase<T>(fn: (database: Database) => Promise<T>): Promise<T> {
  const dbConfig = databaseConfig();
  const { assertMigrated } = await import('./database-state.js');
  await assertMigrated(dbConfig);
  const [{ openDatabase }, { installWebhookOutbox }] = await Promise.all([import('../storage/database.js'), import('../services/webhooks/outbox.js')]);
  // every command that records an event queues it for the webhooks that want it
  installWebhookOutbox();
  const database = await openDatabase(dbConfig, { poolSize: 2 });
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

/** "key: value" lines, aligned. */
export function describe(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(([k, v]) => `${k.padEnd(width)}  ${Array.isArray(v) ? v.join(', ') || '-' : v instanceof Date ? v.toISOString() : String(v)}`)
    .join('\n');
}

