import Provider, { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { providerConfiguration, SESSION_TTL, type ConfigurationDeps } from './configuration.js';
import { pinUrlsToIssuer } from './issuer-urls.js';
import { DatabaseUnavailableError, storageError } from '../storage/errors.js';
import { SecretAttemptsLimitedError, VerifierBusyError, type SecretVerifier } from '../services/client-secrets.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { PayloadStore } from '../storage/oidc-payloads.js';
import { auditRateLimitTripped } from '../services/audit.js';
import { installReplayDetection } from './replay-detection.js';
import { installRefreshGrace } from './refresh-grace.js';
import { installRefreshTargetCheck } from './refresh-target.js';
import { installFapi2Rules } from './fapi.js';
import { installCodeReuseScope } from './code-reuse.js';
import { pageHeaders, PROVIDER_PAGE_POLICY } from '../web/pages.js';
import { installTokenExchange } from './token-exchange.js';
import { refetchKeysOnMismatch } from './client-keys.js';

/**
 * Keeps oidc-provider's Client objects per client id while the admin-data cache
 * is unchanged. oidc-provider's own Client.find serializes and hashes the
 * adapter's metadata on every call to find its cached object; this skips that
 * on the token hot path. Any admin change (or registration) drops the cache,
 * and with it these.
 */
function cacheClients(provider: Provider, cache: AdminDataCache): void {
  const find = provider.Client.find.bind(provider.Client);
  const clients = new Map<string, { generation: number; client: Awaited<ReturnType<typeof find>> }>();
  provider.Client.find = async function cachedFind(id: string) {
    const generation = cache.generation;
    const hit = clients.get(id);
    if (hit && hit.generation === generation) return hit.client;
    const client = await find(id);
    if (client) refetchKeysOnMismatch(client);
    if (client && generation === cache.generation) {
      if (clients.size >= 10_000) clients.clear();
      clients.set(id, { generation, client });
    }
    return client;
  } as typeof provider.Client.find;
}

/**
 * oidc-provider 9.13 answers the device-flow routes (POST /device, GET
 * /device/:uid) with a 500 when the browser has no session cookie: its error
 * path touches the new session, and `persist()` then throws for a session that
 * was never saved. A session that was never saved is saved instead, for the
 * session TTL, so the error page is what the person sees.
 */
function persistNewSessions(provider: Provider): void {
  const session = provider.Session.prototype as unknown as { persist(): Promise<unknown>; save(ttl: number): Promise<unknown>; exp?: number };
  const persist = session.persist;
  session.persist = async function persistOrSave(this: typeof session) {
    return typeof this.exp === 'number' ? persist.call(this) : this.save(SESSION_TTL);
  };
}

/**
 * Headers on what oidc-provider answers itself:
 * - its HTML pages get the page policy (views.ts), whose script-src it fills
 *   with the hash of its inline script, and the other page headers;
 * - revocation answers are not stored either, like every other endpoint's;
 * - RFC 6749 §5.1: token responses carry `Pragma: no-cache` beside
 *   `Cache-Control: no-store` (HTTP/1.0 caches); so does every answer that
 *   must not be stored.
 */
function responseHeaders(provider: Provider): void {
  provider.use(async (ctx, next) => {
    ctx.set('Content-Security-Policy', PROVIDER_PAGE_POLICY);
    await next();
    if (ctx.response.is('html')) pageHeaders(ctx);
    else if (ctx.response.get('Content-Security-Policy') === PROVIDER_PAGE_POLICY) ctx.remove('Content-Security-Policy');
    if ((ctx as { oidc?: { route?: string } }).oidc?.route === 'revocation') ctx.set('Cache-Control', 'no-store');
    if (/\bno-store\b/.test(String(ctx.response.get('Cache-Control')))) ctx.set('Pragma', 'no-cache');
  });
}

/** oidc-provider events whose errors are the client's doing: logged at info, without stacks. */
const OAUTH_ERROR_EVENTS = ['grant.error', 'introspection.error', 'revocation.error', 'backchannel.error', 'end_session.error', 'authorization.error'];

function logErrors(provider: Provider, logger: Logger): void {
  const emitter = provider as unknown as NodeJS.EventEmitter;
  // Koa's own handler would print stack traces; log name and message only. A
  // client that broke HTTP (llhttp's HPE_* parse errors) or hung up is its own
  // problem, not an error of ours: debug only.
  emitter.on('error', (err: Error & { code?: string }) => {
    const clientsFault = err.code?.startsWith('HPE_') || err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED';
    if (clientsFault) logger.debug({ err, code: err.code }, 'client connection error');
    else logger.error({ err }, 'unhandled error');
  });
  provider.on('server_error', (ctx, err) => {
    // a database outage is logged once per interval, with a count (database-outage.ts)
    if (storageError(err) instanceof DatabaseUnavailableError) return;
    logger.error({ err, path: ctx.path }, 'server error');
  });
  for (const event of OAUTH_ERROR_EVENTS) {
    emitter.on(event, (ctx: { path: string } | undefined, err: unknown) => {
      const oauth = err instanceof errors.OIDCProviderError ? err : undefined;
      const cause = (err as Error | undefined)?.cause as { code?: string } | undefined;
      logger.info(
        { event, path: ctx?.path, error: oauth?.error ?? (err as Error | undefined)?.message, description: oauth?.error_description, cause: cause?.code },
        'oauth error',
      );
    });
  }
}

/**
 * A refused verification as the answer: 429 when the client failed too often,
 * 503 when argon2 is saturated, each with Retry-After (set on the response
 * before oidc-provider renders the error).
 */
function refusal(err: unknown): unknown {
  const limited = err instanceof SecretAttemptsLimitedError;
  if (!limited && !(err instanceof VerifierBusyError)) return err;
  Provider.ctx?.set('Retry-After', String(err.retryAfterSeconds));
  const answer = limited
    ? new errors.CustomOIDCProviderError('too_many_requests', 'too many failed client authentications; try again later')
    : new errors.TemporarilyUnavailable('too many requests are being authenticated; try again shortly');
  return Object.assign(answer, { status: limited ? 429 : 503, statusCode: limited ? 429 : 503, expose: true });
}

/**
 * Builds the oidc-provider instance. Client secrets are argon2id hashes, so the
 * comparison oidc-provider does for client_secret_basic/post is replaced with a
 * verification through the success cache.
 */
export function createProvider(deps: ConfigurationDeps & { verifier: SecretVerifier; logger: Logger }): Provider {
  const provider = new Provider(deps.config.issuer, providerConfiguration(deps));
  pinUrlsToIssuer(provider, deps.config.issuer);
  provider.proxy = deps.config.trustProxy;
  // Behind one trusted proxy: the client address is the last X-Forwarded-For
  // entry the proxy appended, not whatever the client put first.
  if (deps.config.trustProxy) provider.maxIpsCount = 1;

  const { verifier } = deps;
  // Awaited by oidc-provider's client authentication (lib/shared/client_auth.js).
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string) {
    if (!this.clientSecret || typeof actual !== 'string') return false;
    try {
      return await verifier.verify(this.clientId, this.clientSecret, actual, Provider.ctx?.ip);
    } catch (err) {
      if (err instanceof SecretAttemptsLimitedError) {
        await auditRateLimitTripped(deps.db, 'secret_failures', Provider.ctx?.ip, { clientId: this.clientId }, (e) => deps.logger.warn({ err: e }, 'could not record an audit event'));
      }
      throw refusal(err);
    }
  } as never;

  cacheClients(provider, deps.cache);
  const store = new PayloadStore(deps.hot);
  installReplayDetection(provider, store, deps.now);
  // the target check first: the grace wraps it, so a refused target spends nothing either way
  installRefreshTargetCheck(provider);
  installRefreshGrace(provider, store, deps.config.refreshReuseGraceSeconds, deps.now);
  installFapi2Rules(provider);
  installCodeReuseScope(provider, deps.db, store, (err) => deps.logger.warn({ err }, 'could not revoke the tokens of a reused authorization code'));
  installTokenExchange(provider, {
    cache: deps.cache, db: deps.db, hot: deps.hot, keys: deps.keys, now: deps.now,
    onAuditError: (err) => deps.logger.warn({ err }, 'could not record an audit event'),
  });
  persistNewSessions(provider);
  responseHeaders(provider);
  logErrors(provider, deps.logger);
  return provider;
}
