import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import type { SecretVerifier } from '../services/client-secrets.js';
import { isArgon2idHash, SecretAttemptsLimitedError, VerifierBusyError } from '../services/client-secrets.js';
import type { RateLimiter } from '../common/rate-limit.js';
import { auditRateLimitTripped } from '../services/audit.js';
import type { Db } from '../storage/database.js';
import { releaseIfFailed } from './registration.js';
import type { Metrics } from '../metrics.js';

/**
 * Koa middleware in front of oidc-provider's /reg routes (RFC 7591/7592), one
 * step per function:
 * - POST /reg is rate-limited per client address and per initial access token;
 * - registration bodies are read here, and sector_identifier_uri is refused
 *   (oidc-provider would fetch it from the server: SSRF);
 * - PUT /reg/:id: a client_secret the app sends is checked against the stored
 *   hash and, if it matches, handed on as the stored value, which is what
 *   oidc-provider compares it with;
 * - a failed registration gives back the single-use token it consumed;
 * - responses never carry the stored hash or Gatehouse's own metadata.
 */

export interface RegistrationGuardDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  verifier: SecretVerifier;
  /** registrations per client address */
  perAddress: RateLimiter;
  /** registrations per initial access token */
  perToken: RateLimiter;
  metrics?: Metrics;
  /** where a failure to write the audit trail is reported */
  onAuditError?: (err: unknown) => void;
}

/** oidc-provider's own body limit, in bytes */
const BODY_LIMIT = 56 * 1024;

class RegistrationRefusal extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly retryAfter?: number,
  ) {
    super(description);
  }
}

const bearerToken = (ctx: Context) => /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];

/** 429 once the address or the initial access token registered too often. */
async function limitRate(ctx: Context, deps: RegistrationGuardDeps): Promise<void> {
  const token = bearerToken(ctx);
  const wait = Math.max(await deps.perAddress.hit(ctx.ip), token ? await deps.perToken.hit(token) : 0);
  if (wait) {
    deps.metrics?.rateLimited.inc({ limit: 'registration' });
    await auditRateLimitTripped(deps.db, 'registration', ctx.ip, {}, deps.onAuditError ?? (() => {}));
    throw new RegistrationRefusal(429, 'too_many_requests', 'too many registration requests; try again later', wait);
  }
}

/** The JSON object in the request body, read within oidc-provider's limit. */
async function readJsonObject(ctx: Context): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new RegistrationRefusal(400, 'invalid_request', 'request entity too large');
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new RegistrationRefusal(400, 'invalid_request', 'failed to parse the request body');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RegistrationRefusal(400, 'invalid_request', 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/**
 * What Gatehouse does not offer, refused by name rather than dropped (an app
 * would otherwise believe it got it): pairwise subjects (sector_identifier_uri
 * would also be fetched from the server: an SSRF door) and encrypted ID
 * tokens, UserInfo or request objects (docs/CONFORMANCE.md, "Design decisions").
 */
function refuseUnsupported(body: Record<string, unknown>): void {
  const refuse = (what: string) => {
    throw new RegistrationRefusal(400, 'invalid_client_metadata', `${what} is not supported`);
  };
  if (body.sector_identifier_uri !== undefined) refuse('sector_identifier_uri');
  if (body.subject_type !== undefined && body.subject_type !== 'public') refuse('subject_type other than public');
  const encryption = Object.keys(body).find((k) => /_encryption_(alg|enc)$|_encrypted_response_(alg|enc)$/.test(k));
  if (encryption) refuse(`${encryption} (encryption)`);
}

/**
 * RFC 7592 update: oidc-provider compares a sent client_secret with the stored
 * value as a plain string. A secret that verifies against the stored hash is
 * replaced by that hash; argon2 runs only for the holder of this client's
 * registration access token.
 */
async function acceptCurrentSecret(ctx: Context, deps: RegistrationGuardDeps, rawId: string, body: Record<string, unknown>): Promise<void> {
  let clientId: string;
  try {
    clientId = decodeURIComponent(rawId);
  } catch {
    throw new RegistrationRefusal(400, 'invalid_request', 'malformed client_id in the path');
  }
  if (typeof body.client_secret !== 'string') return;
  const token = bearerToken(ctx);
  const stored = await deps.cache.client(clientId);
  if (!token || !stored?.secretHash) return;
  const access = await deps.provider.RegistrationAccessToken.find(token);
  if (access?.clientId !== clientId) return;
  try {
    if (await deps.verifier.verify(stored.clientId, stored.secretHash, body.client_secret, ctx.ip)) body.client_secret = stored.secretHash;
  } catch (err) {
    if (err instanceof SecretAttemptsLimitedError) throw new RegistrationRefusal(429, 'too_many_requests', err.message, err.retryAfterSeconds);
    if (err instanceof VerifierBusyError) throw new RegistrationRefusal(503, 'temporarily_unavailable', err.message, err.retryAfterSeconds);
    throw err;
  }
}

/** Removes the stored hash and `gatehouse_*` metadata (the admin's business) from a response body. */
function scrub(body: unknown): void {
  if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) return;
  const out = body as Record<string, unknown>;
  if (typeof out.client_secret === 'string' && isArgon2idHash(out.client_secret)) delete out.client_secret;
  for (const key of Object.keys(out)) if (key.startsWith('gatehouse_')) delete out[key];
}

export function registrationGuard(deps: RegistrationGuardDeps): Middleware {
  return async (ctx, next) => {
    // every request passes here: one regexp test before anything else
    if (!/^\/reg/i.test(ctx.path)) return next();
    // oidc-provider's router ignores case and a trailing slash: so must the guard
    const path = ctx.path.toLowerCase().replace(/\/+$/, '');
    const rawId = /^\/reg\/([^/]+)\/*$/i.exec(ctx.path)?.[1];
    const creates = ctx.method === 'POST' && path === '/reg';
    const updates = ctx.method === 'PUT' && rawId !== undefined;
    try {
      if (creates) await limitRate(ctx, deps);
      if ((creates || updates) && ctx.is('application/json')) {
        const body = await readJsonObject(ctx);
        refuseUnsupported(body);
        if (updates) await acceptCurrentSecret(ctx, deps, rawId!, body);
        // oidc-provider reads an already parsed body from here
        (ctx.request as unknown as { body: unknown }).body = body;
      }
    } catch (err) {
      if (!(err instanceof RegistrationRefusal)) throw err;
      ctx.status = err.status;
      if (err.retryAfter) ctx.set('Retry-After', String(err.retryAfter));
      ctx.body = { error: err.error, error_description: err.message };
      return;
    }
    await next();
    if (creates) await releaseIfFailed(ctx, deps.db);
    scrub(ctx.body);
  };
}
