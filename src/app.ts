import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import compose from 'koa-compose';
import type { default as Provider } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Database, Db } from './storage/database.js';
import type { JWK } from 'jose';
import { purgeAudit, withActor } from './services/audit.js';
import { ensureAdminApi } from './services/apis.js';
import { ensureBuiltInClients } from './services/built-in-clients.js';
import { AdminDataCache } from './services/admin-data-cache.js';
import { ensureSigningKeys, pruneRetiredKeys, readKeySet, rotateSigningKeys, rotationDue } from './services/keys.js';
import { SecretVerifier, type SecretCheckResult } from './services/client-secrets.js';
import { NODE_ID } from './common/node-id.js';
import { Maintenance, type MaintenanceTask } from './services/maintenance.js';
import { purgeWebhookDeliveries } from './services/webhooks/registry.js';
import { WebhookWorker } from './services/webhooks/delivery.js';
import { installWebhookOutbox } from './services/webhooks/outbox.js';
import { LiveProvider } from './oidc/live-provider.js';
import { observeProvider } from './oidc/provider-metrics.js';
import { anonymousActor, auditProvider } from './oidc/provider-audit.js';
import { adminNotFound, adminRoutes } from './admin/routes.js';
import { structuredTokens } from './oidc/structured-tokens.js';
import { PayloadStore, purgeExpiredPayloads } from './storage/oidc-payloads.js';
import { DatabaseOutage, OUTAGE_RETRY_AFTER } from './oidc/database-outage.js';
import { HourlyTokens, Metrics } from './metrics.js';
import { createLimits, type Limits } from './limits/index.js';
import { requestScope } from './oidc/request-scope.js';
import { createProvider } from './oidc/provider.js';
import { registrationGuard } from './oidc/registration-guard.js';
import { issuerGate } from './oidc/issuer-urls.js';
import { authorizationServerMetadata } from './oidc/authorization-server-metadata.js';
import { databaseHealth, healthRoutes } from './health.js';
import { interactionRoutes } from './interactions/routes.js';
import { accountPageRoutes } from './account/routes.js';
import { consoleRoutes } from './console/routes.js';
import type { ConsoleDeps } from './console/context.js';
import { providerViews } from './interactions/provider-views.js';
import { serveAssets } from './web/pages.js';
import { errorPages } from './web/error-pages.js';
import { createUpstreams, type Upstream } from './federation/index.js';
import { requestIdOf, requestIds } from './web/request-id.js';
import { brandAssets, setBranding } from './web/branding.js';
import { landingPage } from './web/landing.js';

export interface AppDeps {
  config: Config;
  database: Database;
  logger: Logger;
  /** ms since the epoch; tests may pass their own clock */
  now?: () => number;
  /** upstream identity providers; built from config.upstreams when not given */
  upstreams?: Map<string, Upstream>;
  /** where rate limits are counted; built from config (REDIS_URL, WORKERS) when not given */
  limits?: Limits;
  metrics?: Metrics;
}

export interface App {
  provider: Provider;
  metrics: Metrics;
  cache: AdminDataCache;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  /** starts background work: change polling, webhook deliveries, and maintenance (the purge of expired rows) under a lease */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Paths served by Gatehouse itself rather than oidc-provider. */
const OWN_ROUTES = /^\/(?:$|interaction\/|oauth2\/|account(?:\/|$)|console(?:\/|$)|assets\/|admin\/v1(?:\/|$)|healthz$|readyz$)/;

/** One line per request: its id (X-Request-Id), method, path without the query string, status, duration. */
function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    let status: number | undefined;
    try {
      await next();
    } catch (err) {
      // what Koa will answer for an error nothing inside handled
      status = (err as { status?: number }).status ?? 500;
      throw err;
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ requestId: requestIdOf(ctx), method: ctx.method, path: ctx.path, status: status ?? ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}

/** Builds the whole server without listening, so tests and main.ts share it. */
export async function createApp({
  config, database, logger, now = Date.now, upstreams = createUpstreams(config.upstreams),
  limits = createLimits({ redisUrl: config.redisUrl, workers: config.workers, logger }), metrics = new Metrics(),
}: AppDeps): Promise<App> {
  // every event this process records (from the first: the built-in API and client) queues its webhook deliveries
  installWebhookOutbox();
  const db = database.prisma;
  const cache = new AdminDataCache(db, logger, config.changePollMs);
  await ensureSigningKeys(db, config.keyEncryptionKey);
  // the management API's own API (audience <issuer>/admin/v1), made by whichever node starts first
  await withActor({ type: 'system' }, () => ensureAdminApi(db, config.issuer));
  // the built-in clients that /account and /console sign in through
  await withActor({ type: 'system' }, () => ensureBuiltInClients(db, config.issuer));
  // per minute, in seconds
  const MINUTE = 60;
  const secretCheckCounters = Object.fromEntries(
    (['cache_hit', 'argon2_ok', 'argon2_fail', 'limited', 'busy'] as const).map((r) => [r, metrics.secretChecks.labels(r)]),
  ) as Record<SecretCheckResult, ReturnType<Metrics['secretChecks']['labels']>>;
  const verifier = new SecretVerifier(10_000, config.secretChecks, {
    perClientAndAddress: limits.limiter('secret-failures:client-address', config.secretFailureLimit, MINUTE),
    perClient: limits.limiter('secret-failures:client', config.secretFailureLimit * 10, MINUTE),
  }, (result) => {
    // bound children: a cache hit (every successful token request) costs no label lookup
    secretCheckCounters[result].inc();
    if (result === 'limited') metrics.rateLimited.inc({ limit: 'secret_failures' });
  });
  const registrationLimits = {
    perAddress: limits.limiter('registrations:address', config.registrationRateLimit, MINUTE),
    perToken: limits.limiter('registrations:token', config.registrationRateLimit, MINUTE),
  };
  const health = healthRoutes(db, () => limits.status()).routes();
  const brand = brandAssets(config.branding);
  const landing = landingPage(config.issuer);
  const outage = new DatabaseOutage(logger, now);
  const hourlyTokens = new HourlyTokens(metrics, now);
  const consoleHealth = async () => ({ database: await databaseHealth(db), redis: limits.status().redis });

  /** oidc-provider with every Gatehouse middleware, for one key set. */
  const build = (keys: JWK[]) => {
    const provider = createProvider({ config, db, cache, keys, views: providerViews, now, verifier, logger, hot: database.hot });
    observeProvider(provider, metrics);
    auditProvider(provider, db, logger);
    outage.observe(provider);
    setBranding(provider, { ...config.branding, stylesheet: brand.href });
    // first: every response, and the log line, carry the request's id
    provider.use(requestIds(config.trustProxy));
    provider.use(metrics.http());
    provider.use(anonymousActor());
    // outside the outage's rewrite, so it logs the 503 that goes out, not the error inside
    if (logger.isLevelEnabled('info')) provider.use(requestLog(logger));
    provider.use(outage.middleware());
    // inside the outage's rewrite: a failed deferred write answers 503
    provider.use(requestScope(database.hot, '/token')); // oidc-provider's default route, at the host's root
    const issuerPathMetadata = authorizationServerMetadata(config.issuer);
    if (issuerPathMetadata) provider.use(issuerPathMetadata);
    provider.use(issuerGate(config.issuer, config.keyPublishLeadSeconds));
    provider.use(structuredTokens({ db, hot: database.hot, store: new PayloadStore(database.hot), cache, issuer: config.issuer, keys, now }));
    provider.use(registrationGuard({ provider, db, cache, verifier, metrics, ...registrationLimits, onAuditError: (err) => logger.warn({ err }, 'could not record an audit event') }));
    // Gatehouse's own pages and routes, behind one prefix check so that protocol
    // requests (/token above all) pass a single cheap function on their way to oidc-provider.
    const own = ownRoutes({ provider, keys, config, database, cache, upstreams, logger, metrics }, {
      errorPages: errorPages(logger, { recognise: (err) => outage.recognise(err), retryAfter: OUTAGE_RETRY_AFTER }),
      pages: [landing, serveAssets, brand.serve, health as unknown as Middleware],
      console: { health: consoleHealth, tokenHistory: () => hourlyTokens.series() },
    });
    provider.use((ctx, next) => (OWN_ROUTES.test(ctx.path) ? own(ctx, next) : next()));
    return provider;
  };
  const loadKeys = () => readKeySet(db, config.keyEncryptionKey, now());
  const live = new LiveProvider(build, loadKeys, logger, now, await loadKeys());
  metrics.probe({
    argon2Queue: () => verifier.inFlight,
    keyAge: () => Object.fromEntries(live.signingSince.map(({ alg, since }) => [alg, Math.max(0, (now() - since) / 1000)])),
    redisUp: () => {
      const { redis } = limits.status();
      return redis === undefined ? undefined : redis === 'up' ? 1 : 0;
    },
  });
  // an admin change may be a key rotation
  cache.onChange(() => live.reload());

  const maintenance = new Maintenance(db, { holder: NODE_ID, logger, now, tasks: maintenanceTasks(database, config, logger, now) });
  // on every node, not only the maintenance lease's holder
  const webhooks = new WebhookWorker(db, { logger, now, keyEncryptionKey: config.keyEncryptionKey, allowPrivateNetworkRequests: config.allowPrivateNetworkRequests });

  return {
    get provider() {
      return live.provider;
    },
    metrics,
    cache,
    callback: () => live.callback(),
    async start() {
      await cache.start();
      hourlyTokens.start();
      await maintenance.start();
      webhooks.start();
    },
    async stop() {
      cache.stop();
      hourlyTokens.stop();
      live.stop();
      await maintenance.stop();
      await webhooks.stop();
      await limits.close();
    },
  };
}

interface OwnRouteDeps {
  provider: Provider;
  keys: JWK[];
  config: Config;
  database: Database;
  cache: AdminDataCache;
  upstreams: Map<string, Upstream>;
  logger: Logger;
  metrics: Metrics;
}

/** Gatehouse's own pages and routes, in order: the site-wide error pages first, the 404 page last. */
function ownRoutes(
  { provider, keys, config, database, cache, upstreams, logger, metrics }: OwnRouteDeps,
  parts: { errorPages: Middleware; pages: Middleware[]; console: Pick<ConsoleDeps, 'health' | 'tokenHistory'> },
) {
  const db = database.prisma;
  const { issuer } = config;
  return compose<Parameters<Middleware>[0]>([
    parts.errorPages,
    ...parts.pages,
    interactionRoutes({ provider, db, hot: database.hot, cache, upstreams, issuer, linkVerifiedEmails: config.linkVerifiedEmails, logger, metrics }).routes(),
    accountPageRoutes({ provider, db, cache, upstreams, issuer, logger }).routes(),
    consoleRoutes({
      provider, db, cache, issuer, logger, keys, keyEncryptionKey: config.keyEncryptionKey, keyPublishLeadSeconds: config.keyPublishLeadSeconds,
      registrationMode: config.registration, consoleAdminEmail: config.consoleAdminEmail, ...parts.console,
    }),
    adminRoutes({
      provider, db, cache, issuer, keys, keyEncryptionKey: config.keyEncryptionKey,
      keyPublishLeadSeconds: config.keyPublishLeadSeconds, registrationMode: config.registration, logger, hot: database.hot,
    }).routes(),
    adminNotFound(),
    // a path of Gatehouse's own that nothing answered: the 404 page (errorPages), not oidc-provider's plain text
    (ctx: { throw(status: number): never }) => ctx.throw(404),
  ] as Middleware[]);
}

/** What the holder of the maintenance lease does, once per deployment. */
function maintenanceTasks({ prisma: db, hot }: Database, config: Config, logger: Logger, now: () => number): MaintenanceTask[] {
  // an hour, in ms
  const HOUR = 3_600_000;
  const tasks: MaintenanceTask[] = [
    {
      name: 'purge',
      everyMs: config.purgeIntervalSeconds * 1000,
      async run() {
        const count = await purgeExpiredPayloads(hot, new Date(now()));
        if (count) logger.info({ count }, 'purged expired artifacts');
      },
    },
    {
      name: 'audit retention',
      everyMs: HOUR,
      async run() {
        const count = await purgeAudit(db, config.auditRetentionDays, new Date(now()));
        if (count) logger.info({ count, days: config.auditRetentionDays }, 'purged audit events past retention');
      },
    },
    {
      name: 'webhook delivery retention',
      everyMs: HOUR,
      async run() {
        // delivered or given-up deliveries are kept as long as the audit trail
        const count = await purgeWebhookDeliveries(db, config.auditRetentionDays, new Date(now()));
        if (count) logger.info({ count }, 'purged old webhook deliveries');
      },
    },
    {
      name: 'prune retired keys',
      everyMs: HOUR,
      async run() {
        const count = await pruneRetiredKeys(db, now());
        if (count) logger.info({ count }, 'removed retired signing keys whose tokens have expired');
      },
    },
  ];
  const days = config.keyRotationDays;
  if (days) {
    tasks.push({
      name: 'scheduled key rotation',
      everyMs: HOUR,
      async run() {
        if (!(await rotationDue(db, days, now()))) return;
        await rotateSigningKeys(db, config.keyEncryptionKey, { publishLeadSeconds: config.keyPublishLeadSeconds, now: now() });
        logger.info({ days }, 'rotated the signing keys on schedule');
      },
    });
  }
  return tasks;
}
