import { z } from 'zod';

/** The placeholder that `.env.example` ships; production refuses it. */
export const DEMO_COOKIE_KEY_PREFIX = 'change-me';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type DatabaseKind = 'sqlite' | 'postgresql';

export interface Config {
  env: 'development' | 'production' | 'test';
  issuer: string;
  port: number;
  host: string | undefined;
  database: { url: string; kind: DatabaseKind };
  cookieKeys: string[];
  /** true when COOKIE_KEYS was not set and keys were generated for this process only */
  cookieKeysGenerated: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  /** 32 bytes, or undefined to store signing keys unencrypted */
  keyEncryptionKey: Buffer | undefined;
  trustProxy: boolean;
  /** how often a server checks for admin changes to clients and APIs, in ms */
  changePollMs: number;
  /** how often expired rows are purged, in seconds */
  purgeIntervalSeconds: number;
  /** how long SIGTERM waits for in-flight requests, in ms */
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).optional(),
  ISSUER: z
    .string()
    .refine((v) => /^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(v) && URL.canParse(v), 'must be an absolute http(s) URL with no query or fragment')
    .optional(),
  DATABASE_URL: z
    .string()
    .refine((v) => /^(file:|postgres:\/\/|postgresql:\/\/)/.test(v), 'must start with file: (SQLite) or postgres:// (PostgreSQL)')
    .default('file:./data/gatehouse.db'),
  COOKIE_KEYS: z
    .string()
    .transform((v) => v.split(',').map((k) => k.trim()).filter(Boolean))
    .pipe(
      z
        .array(z.string().min(32, 'each key must be at least 32 characters'))
        .min(1, 'must list at least one key'),
    )
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  KEY_ENCRYPTION_KEY: z
    .string()
    .transform((v) => Buffer.from(v, 'base64url'))
    .refine((b) => b.length === 32, 'must be 32 bytes, base64url-encoded (openssl rand -base64 32)')
    .optional(),
  TRUST_PROXY: bool.default(false),
  CHANGE_POLL_MS: int(100, 3_600_000).default(1000),
  PURGE_INTERVAL_SECONDS: int(1, 86_400).default(600),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
});

/**
 * Parses the environment once, at start. Every problem is collected so that one
 * message lists them all. Empty strings count as unset.
 */
export function parseConfig(env: Record<string, string | undefined>, randomKey: () => string): Config {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(input);
  const problems = parsed.success
    ? []
    : [...new Set(parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')}: ${issue.message}`))];
  problems.push(...productionProblems(input));
  if (!parsed.success || problems.length) throw new ConfigError(problems);
  const v = parsed.data;
  const issuer = (v.ISSUER ?? `http://localhost:${v.PORT}`).replace(/\/$/, '');
  return {
    env: v.NODE_ENV,
    issuer,
    port: v.PORT,
    host: v.HOST,
    database: { url: v.DATABASE_URL, kind: v.DATABASE_URL.startsWith('file:') ? 'sqlite' : 'postgresql' },
    cookieKeys: v.COOKIE_KEYS ?? [randomKey(), randomKey()],
    cookieKeysGenerated: !v.COOKIE_KEYS,
    logLevel: v.LOG_LEVEL,
    keyEncryptionKey: v.KEY_ENCRYPTION_KEY,
    trustProxy: v.TRUST_PROXY,
    changePollMs: v.CHANGE_POLL_MS,
    purgeIntervalSeconds: v.PURGE_INTERVAL_SECONDS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
  };
}

/** Production refuses demo or missing secrets, checked on the raw values so they join the other problems. */
function productionProblems(input: Record<string, string | undefined>): string[] {
  if (input.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  if (!input.COOKIE_KEYS) problems.push('COOKIE_KEYS: required when NODE_ENV=production');
  else if (input.COOKIE_KEYS.split(',').some((k) => k.trim().startsWith(DEMO_COOKIE_KEY_PREFIX))) {
    problems.push('COOKIE_KEYS: the demo key from .env.example must not be used when NODE_ENV=production');
  }
  if (!input.ISSUER) problems.push('ISSUER: required when NODE_ENV=production');
  else if (!input.ISSUER.startsWith('https://')) problems.push('ISSUER: must be https when NODE_ENV=production');
  return problems;
}

/** The subset the CLI needs: only the database. */
export function parseDatabaseConfig(env: Record<string, string | undefined>): Config['database'] {
  const url = env.DATABASE_URL || 'file:./data/gatehouse.db';
  const parsed = schema.shape.DATABASE_URL.safeParse(url);
  if (!parsed.success) throw new ConfigError([`DATABASE_URL: ${parsed.error.issues[0].message}`]);
  return { url, kind: url.startsWith('file:') ? 'sqlite' : 'postgresql' };
}
