import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig, parseDatabaseConfig } from '../config.js';
import { openDatabase, type Database } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';

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

export function output(json: boolean): Output {
  return {
    json,
    print(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
    },
  };
}

/** Reads the environment (and .env) through `parse`; configuration problems become one CLI error. */
function fromEnv<T>(parse: (env: NodeJS.ProcessEnv) => T): T {
  if (existsSync('.env')) process.loadEnvFile('.env');
  try {
    return parse(process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.problems.join('; '));
    throw err;
  }
}

/** DATABASE_URL alone, for commands that only touch the database. */
export const databaseConfig = () => fromEnv(parseDatabaseConfig);

/** The whole server configuration, for commands that build oidc-provider objects. */
export const serverConfig = () => fromEnv((env) => parseConfig(env, () => randomBytes(32).toString('base64url')));

/** Opens the database from DATABASE_URL (or .env), applying pending migrations first. */
export async function withDatabase<T>(fn: (database: Database) => Promise<T>): Promise<T> {
  const dbConfig = databaseConfig();
  await migrate(dbConfig);
  const database = openDatabase(dbConfig, { poolSize: 2 });
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

