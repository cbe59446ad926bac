import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DEFAULT_DATABASE_URL } from './common/defaults.js';
import { DATABASE_URL_MESSAGE, DATABASE_URL_PATTERN, databaseOfUrl, readDatabaseUrl } from './common/database-url.js';
import { isLoopbackHttp } from './common/loopback.js';
import { REGISTRATION_MODES, type RegistrationMode } from './common/protocol.js';

/** The placeholder that `.env.example` ships; production refuses it. */
export const DEMO_COOKIE_KEY_PREFIX = 'change-me';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type DatabaseKind = 'sqlite' | 'postgresql';

/** An upstream identity provider people sign in with. */
export type UpstreamConfig =
  | { kind: 'github'; id: 'github'; name: string; clientId: string; clientSecret: string; baseUrl: string; apiUrl: string }
  | { kind: 'oidc'; id: string; name: string; clientId: string; clientSecret: string; issuer: string; scopes: string[] };

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
  /** how long a new signing key is published in /jwks before it signs anything, in seconds */
  keyPublishLeadSeconds: number;
  /** rotate the signing keys when the signing one is this many days old; undefined: only `keys rotate` */
  keyRotationDays: number | undefined;
  trustProxy: boolean;
  /** how often a server checks for admin changes to clients and APIs, in ms */
  changePollMs: number;
  /** how often expired rows are purged, in seconds */
  purgeIntervalSeconds: number;
  /** how long SIGTERM waits for in-flight requests, in ms */
  shutdownTimeoutMs: number;
  /**
   * seconds during which a just-rotated refresh token is accepted again,
   * answered with the same successor tokens (two tabs refreshing at once); 0: never
   */
  refreshReuseGraceSeconds: number;
  /** days audit events are kept; older ones are purged hourly */
  auditRetentionDays: number;
  /** server processes: 1 runs in this process; more run as node:cluster workers under a primary */
  workers: number;
  /** configured upstreams, in the order the login page shows them */
  upstreams: UpstreamConfig[];
  /** link a new upstream identity to an existing account when both assert the same verified email */
  linkVerifiedEmails: boolean;
  /**
   * let outgoing requests (back-channel logout) reach loopback and private
   * addresses, which oidc-provider otherwise refuses (SSRF protection)
   */
  allowPrivateNetworkRequests: boolean;
  /** dynamic client registration: off, gated by initial access tokens, or open to anyone */
  registration: RegistrationMode;
  /** registration requests per minute, per IP and per initial access token */
  registrationRateLimit: number;
  /** where Prometheus metrics are served (never the public port); undefined: not served */
  metrics: { port: number; host: string } | undefined;
  /** Redis for limits shared by every worker and instance; unset: counted per instance */
  redisUrl: string | undefined;
  /** failed client-secret checks per client and address per minute; per client overall, ten times as many */
  secretFailureLimit: number;
  /** argon2 checks at once in one process, and how many may wait beyond that before a 503 */
  secretChecks: { concurrency: number; queue: number };
  /** what the pages show of the product: its name, a logo URL and an accent colour (#rrggbb) */
  branding: { name: string; logoUrl: string | undefined; accentColor: string };
  /**
   * the email (lowercase) whose person becomes the console's first admin when
   * they sign in to it with that email verified and no account holds admin yet;
   * undefined: roles are granted only by `accounts grant-role`
   */
  consoleAdminEmail: string | undefined;
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

/** The environment as Gatehouse reads it: the one source of every variable, its rule and its default (the README table is checked against it). */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).optional(),
  ISSUER: z
    .string()
    .refine((v) => /^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(v) && URL.canParse(v), 'must be an absolute http(s) URL with no query or fragment')
    .optional(),
  DATABASE_URL: z
    .string()
    .refine((v) => DATABASE_URL_PATTERN.test(v), DATABASE_URL_MESSAGE)
    .default(DEFAULT_DATABASE_URL),
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
  // 1 hour, in seconds
  KEY_PUBLISH_LEAD: int(0, 30 * 86_400).default(3600),
  KEY_ROTATION_DAYS: int(1, 3650).optional(),
  TRUST_PROXY: bool.default(false),
  CHANGE_POLL_MS: int(100, 3_600_000).default(1000),
  PURGE_INTERVAL_SECONDS: int(1, 86_400).default(600),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  REFRESH_REUSE_GRACE_SECONDS: int(0, 60).default(5),
  AUDIT_RETENTION_DAYS: int(1, 36_500).default(365),
  WORKERS: z.union([z.literal('auto'), int(1, 256)], { message: 'must be auto or a whole number from 1 to 256' }).optional(),
  ACCOUNT_LINKING: z.enum(['off', 'verified-email']).default('off'),
  ALLOW_PRIVATE_NETWORK_REQUESTS: bool.default(false),
  REGISTRATION: z.enum(REGISTRATION_MODES).default('initial-access-token'),
  REGISTRATION_RATE_LIMIT: int(1, 100_000).default(20),
  REDIS_URL: z.string().refine((v) => /^rediss?:\/\/[^\s]+$/.test(v) && URL.canParse(v), 'must be a redis:// or rediss:// URL').optional(),
  SECRET_FAILURE_LIMIT: int(1, 10_000).default(10),
  SECRET_CHECK_CONCURRENCY: int(1, 64).default(4),
  SECRET_CHECK_QUEUE: int(0, 100_000).default(64),
  METRICS_PORT: int(1, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  BRAND_NAME: z.string().trim().min(1).max(60).refine((v) => !/[\u0000-\u001f\u007f-\u009f<>]/.test(v), 'must be plain text (no control characters, < or >)').default('Gatehouse'),
  BRAND_LOGO_URL: z.string().refine((v) => /^https:\/\/[^\s"'<>]+$/.test(v) && URL.canParse(v), 'must be an https URL').optional(),
  BRAND_ACCENT_COLOR: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour as #rrggbb').default('#2f5bd3'),
  CONSOLE_ADMIN_EMAIL: z.string().trim().pipe(z.email({ message: 'must be an email address' })).transform((v) => v.toLowerCase()).optional(),
});

/**
 * Parses the environment once, at start. Every problem is collected so that one
 * message lists them all. Empty strings count as unset.
 */
export function parseConfig(env: Record<string, string | undefined>, randomKey: () => string): Config {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(input);
  const problems = parsed.success
    ? []
    : [...new Set(parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')}: ${issue.message}`))];
  problems.push(...productionProblems(input));
  const upstreams = parseUpstreams(input, problems);
  if (!parsed.success || problems.length) throw new ConfigError(problems);
  const v = parsed.data;
  const issuer = (v.ISSUER ?? `http://localhost:${v.PORT}`).replace(/\/$/, '');
  return {
    env: v.NODE_ENV,
    issuer,
    port: v.PORT,
    host: v.HOST,
    database: databaseOfUrl(v.DATABASE_URL),
    cookieKeys: v.COOKIE_KEYS ?? [randomKey(), randomKey()],
    cookieKeysGenerated: !v.COOKIE_KEYS,
    logLevel: v.LOG_LEVEL,
    keyEncryptionKey: v.KEY_ENCRYPTION_KEY,
    keyPublishLeadSeconds: v.KEY_PUBLISH_LEAD,
    keyRotationDays: v.KEY_ROTATION_DAYS,
    trustProxy: v.TRUST_PROXY,
    changePollMs: v.CHANGE_POLL_MS,
    purgeIntervalSeconds: v.PURGE_INTERVAL_SECONDS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    refreshReuseGraceSeconds: v.REFRESH_REUSE_GRACE_SECONDS,
    auditRetentionDays: v.AUDIT_RETENTION_DAYS,
    // one per core in production, one process otherwise
    workers: workerCount(v.WORKERS ?? (v.NODE_ENV === 'production' ? 'auto' : 1)),
    upstreams,
    linkVerifiedEmails: v.ACCOUNT_LINKING === 'verified-email',
    allowPrivateNetworkRequests: v.ALLOW_PRIVATE_NETWORK_REQUESTS,
    registration: v.REGISTRATION,
    registrationRateLimit: v.REGISTRATION_RATE_LIMIT,
    redisUrl: v.REDIS_URL,
    metrics: v.METRICS_PORT ? { port: v.METRICS_PORT, host: v.METRICS_HOST } : undefined,
    secretFailureLimit: v.SECRET_FAILURE_LIMIT,
    secretChecks: { concurrency: v.SECRET_CHECK_CONCURRENCY, queue: v.SECRET_CHECK_QUEUE },
    branding: { name: v.BRAND_NAME, logoUrl: v.BRAND_LOGO_URL, accentColor: v.BRAND_ACCENT_COLOR.toLowerCase() },
    consoleAdminEmail: v.CONSOLE_ADMIN_EMAIL,
  };
}

/** https, or http on a loopback host (a provider on this machine, e.g. for development). */
function upstreamUrl(name: string, value: string, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${name}: must be an absolute URL`);
    return value;
  }
  if (url.protocol !== 'https:' && !isLoopbackHttp(url)) {
    problems.push(`${name}: must be https (http only for localhost)`);
  }
  if (url.search || url.hash) problems.push(`${name}: must not have a query or fragment`);
  return value.replace(/\/$/, '');
}

type Credentials = { clientId: string; clientSecret: string };

/** Both variables of a credential pair, or neither. */
function credentials(prefix: string, env: Record<string, string | undefined>, problems: string[]): Credentials | undefined {
  const clientId = env[`${prefix}_CLIENT_ID`];
  const clientSecret = env[`${prefix}_CLIENT_SECRET`];
  if (!clientId && !clientSecret) return undefined;
  if (!clientId) problems.push(`${prefix}_CLIENT_ID: required when ${prefix}_CLIENT_SECRET is set`);
  if (!clientSecret) problems.push(`${prefix}_CLIENT_SECRET: required when ${prefix}_CLIENT_ID is set`);
  return clientId && clientSecret ? { clientId, clientSecret } : undefined;
}

/**
 * GITHUB_*, GOOGLE_* and OIDC_PROVIDERS=<id>,… with OIDC_<ID>_ISSUER, _CLIENT_ID,
 * _CLIENT_SECRET, _NAME and _SCOPES. A provider without credentials is not offered.
 */
function parseUpstreams(env: Record<string, string | undefined>, problems: string[]): UpstreamConfig[] {
  const upstreams: UpstreamConfig[] = [];
  const url = (name: string, fallback: string) => upstreamUrl(name, env[name] ?? fallback, problems);
  const builtIn = {
    GITHUB: (creds: Credentials): UpstreamConfig => ({
      kind: 'github', id: 'github', name: 'GitHub', ...creds,
      baseUrl: url('GITHUB_BASE_URL', 'https://github.com'),
      apiUrl: url('GITHUB_API_URL', 'https://api.github.com'),
    }),
    GOOGLE: (creds: Credentials): UpstreamConfig => ({
      kind: 'oidc', id: 'google', name: 'Google', ...creds,
      issuer: url('GOOGLE_ISSUER', 'https://accounts.google.com'),
      scopes: ['openid', 'email', 'profile'],
    }),
  };
  for (const [prefix, make] of Object.entries(builtIn)) {
    const creds = credentials(prefix, env, problems);
    if (creds) upstreams.push(make(creds));
  }
  const ids = (env.OIDC_PROVIDERS ?? '').split(',').map((id) => id.trim()).filter(Boolean);
  for (const id of ids) {
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(id)) {
      problems.push(`OIDC_PROVIDERS: "${id}" must be lower-case letters, digits and dashes`);
      continue;
    }
    if (upstreams.some((u) => u.id === id) || id === 'github' || id === 'google') {
      problems.push(`OIDC_PROVIDERS: "${id}" is listed twice or is a built-in provider`);
      continue;
    }
    const prefix = `OIDC_${id.toUpperCase().replace(/-/g, '_')}`;
    const creds = credentials(prefix, env, problems);
    const issuer = env[`${prefix}_ISSUER`];
    if (!issuer) problems.push(`${prefix}_ISSUER: required for OIDC provider "${id}"`);
    if (!creds && !env[`${prefix}_CLIENT_ID`] && !env[`${prefix}_CLIENT_SECRET`]) {
      problems.push(`${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET: required for OIDC provider "${id}"`);
    }
    const scopes = (env[`${prefix}_SCOPES`] ?? 'openid email profile').split(/[\s,]+/).filter(Boolean);
    if (!scopes.includes('openid')) problems.push(`${prefix}_SCOPES: must include openid`);
    if (creds && issuer) {
      upstreams.push({
        kind: 'oidc',
        id,
        name: env[`${prefix}_NAME`] ?? id,
        ...creds,
        issuer: upstreamUrl(`${prefix}_ISSUER`, issuer, problems),
        scopes,
      });
    }
  }
  return upstreams;
}

/** Production refuses demo or missing secrets, checked on the raw values so they join the other problems. */
function productionProblems(input: Record<string, string | undefined>): string[] {
  if (input.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  if (!input.COOKIE_KEYS) problems.push('COOKIE_KEYS: required when NODE_ENV=production');
  else if (input.COOKIE_KEYS.split(',').some((k) => k.trim().startsWith(DEMO_COOKIE_KEY_PREFIX))) {
    problems.push('COOKIE_KEYS: the demo key from .env.example must not be used when NODE_ENV=production');
  }
  problems.push(...keyEncryptionKeyProblems(input.KEY_ENCRYPTION_KEY));
  if (!input.ISSUER) problems.push('ISSUER: required when NODE_ENV=production');
  else if (!input.ISSUER.startsWith('https://')) problems.push('ISSUER: must be https when NODE_ENV=production');
  return problems;
}

/**
 * Production encrypts private keys and webhook secrets at rest, with a key
 * that must be there and must not be guessable: 32 random bytes. A key of few
 * distinct bytes (all zeros, a repeated character, a word padded out) is
 * refused; the size itself is checked with the other variables.
 */
function keyEncryptionKeyProblems(value: string | undefined): string[] {
  if (!value) return ['KEY_ENCRYPTION_KEY: required when NODE_ENV=production (generate one: openssl rand -base64 32)'];
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.length === 32 && new Set(bytes).size < 16) return ['KEY_ENCRYPTION_KEY: too weak for NODE_ENV=production: use 32 random bytes (openssl rand -base64 32)'];
  return [];
}

const workerCount = (workers: 'auto' | number) => (workers === 'auto' ? availableParallelism() : workers);

/** The subset the CLI needs: only the database (the CLI itself reads it with readDatabaseUrl, without zod). */
export function parseDatabaseConfig(env: Record<string, string | undefined>): Config['database'] {
  const database = readDatabaseUrl(env.DATABASE_URL);
  if ('problem' in database) throw new ConfigError([database.problem]);
  return database;
}
