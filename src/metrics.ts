import { createServer, type Server } from 'node:http';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Middleware } from 'koa';

/**
 * Prometheus metrics (prom-client), one registry per app. Labels are bounded:
 * routes are oidc-provider's route names or the router's patterns, never raw
 * paths; APIs are registered identifiers. Served on their own listener
 * (METRICS_PORT), never on the public port; with several workers, the primary
 * serves the sum over all of them.
 * @see https://github.com/siimon/prom-client
 */
export class Metrics {
  readonly registry = new Registry();
  readonly duration = new Histogram({
    // its _count is the number of requests: no separate counter on the hot path
    name: 'gatehouse_http_request_duration_seconds', help: 'HTTP requests and their latency by route, method and status', labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
  });
  readonly tokens = new Counter({ name: 'gatehouse_tokens_issued_total', help: 'successful token requests by grant type and API', labelNames: ['grant_type', 'api'], registers: [this.registry] });
  readonly tokenErrors = new Counter({ name: 'gatehouse_token_errors_total', help: 'failed token requests by OAuth error code', labelNames: ['error'], registers: [this.registry] });
  readonly secretChecks = new Counter({
    name: 'gatehouse_client_secret_checks_total', help: 'client secret checks: cache_hit, argon2_ok, argon2_fail, limited (too many failures), busy (argon2 queue full)',
    labelNames: ['result'], registers: [this.registry],
  });
  readonly #probes: Probes = {};
  readonly argon2Queue = new Gauge({
    name: 'gatehouse_argon2_queue_depth', help: 'argon2 verifications running or waiting', registers: [this.registry], aggregator: 'sum',
    collect: () => this.#probe('argon2Queue', (v) => this.argon2Queue.set(v)),
  });
  readonly rateLimited = new Counter({ name: 'gatehouse_rate_limit_refusals_total', help: 'requests refused by a rate limit', labelNames: ['limit'], registers: [this.registry] });
  readonly signIns = new Counter({ name: 'gatehouse_upstream_sign_ins_total', help: 'upstream sign-ins by provider and outcome (success, denied, oauth, network, unexpected)', labelNames: ['provider', 'outcome'], registers: [this.registry] });
  readonly refreshReuse = new Counter({ name: 'gatehouse_refresh_token_reuse_total', help: 'reuses of a rotated refresh token (the grant is revoked)', registers: [this.registry] });
  readonly refreshGrace = new Counter({ name: 'gatehouse_refresh_token_grace_repeats_total', help: 'refreshes answered again within REFRESH_REUSE_GRACE_SECONDS (nothing new issued)', registers: [this.registry] });
  readonly keyAge = new Gauge({
    name: 'gatehouse_signing_key_age_seconds', help: 'how long the signing key of each algorithm has been signing', labelNames: ['alg'], registers: [this.registry], aggregator: 'max',
    collect: () => this.#probe('keyAge', (ages) => Object.entries(ages).forEach(([alg, age]) => this.keyAge.set({ alg }, age))),
  });
  readonly redisUp = new Gauge({
    name: 'gatehouse_redis_up', help: '1 while Redis (REDIS_URL) is reachable, 0 while limits are counted per process', registers: [this.registry], aggregator: 'min',
    collect: () => this.#probe('redisUp', (v) => this.redisUp.set(v)),
  });

  /** Where gauges read their values at scrape time. */
  probe(probes: Probes): void {
    Object.assign(this.#probes, probes);
  }

  #probe<K extends keyof Probes>(name: K, set: (value: NonNullable<ReturnType<NonNullable<Probes[K]>>>) => void): void {
    const value = this.#probes[name]?.();
    if (value !== undefined) set(value as NonNullable<ReturnType<NonNullable<Probes[K]>>>);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts and times every request; the route is oidc-provider's route name or the router's pattern. */
  http(): Middleware {
    return async (ctx, next) => {
      const started = process.hrtime.bigint();
      try {
        await next();
      } finally {
        const oidc = (ctx as { oidc?: { route?: string } }).oidc;
        const route = oidc?.route ?? (ctx as { _matchedRoute?: string })._matchedRoute ?? 'other';
        this.duration.observe({ route, method: ctx.method, status: String(ctx.status) }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    };
  }
}

/** Readings taken at scrape time; a probe that returns undefined leaves its gauge out. */
export interface Probes {
  argon2Queue?: () => number;
  /** seconds each algorithm's signing key has signed */
  keyAge?: () => Record<string, number>;
  redisUp?: () => number | undefined;
}

/** Serves `render` as GET /metrics on its own port; anything else is a 404. */
export function serveMetrics(port: number, host: string, render: () => Promise<{ contentType: string; body: string }>): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    render().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(503).end(),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** One process's registry, as text. */
export const renderRegistry = (registry: Registry) => async () => ({ contentType: registry.contentType, body: await registry.metrics() });

/** In a node:cluster worker: answer the primary's requests with this registry. */
export function shareWithPrimary(registry: Registry): void {
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}

/** In the primary: the sum over every worker, plus the primary's own registry (worker restarts). */
export function aggregateWorkers(own: Registry): () => Promise<{ contentType: string; body: string }> {
  const aggregator = new AggregatorRegistry();
  return async () => {
    const workers = await aggregator.clusterMetrics();
    return { contentType: aggregator.contentType, body: `${workers}\n${await own.metrics()}` };
  };
}

/**
 * Tokens issued per hour by this process, for the console's overview: the
 * counter's total is read once a minute (never on the token path) and kept a
 * day. A fleet's totals are Prometheus' job (gatehouse_tokens_issued_total).
 */
export class HourlyTokens {
  static readonly HOUR = 3_600_000;
  readonly #readings: { at: number; total: number }[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly metrics: Metrics, private readonly now: () => number = Date.now) {}

  async #read(): Promise<void> {
    const { values } = await this.metrics.tokens.get();
    this.#readings.push({ at: this.now(), total: values.reduce((sum, v) => sum + v.value, 0) });
    const keepFrom = this.now() - 25 * HourlyTokens.HOUR;
    while (this.#readings.length > 1 && this.#readings[1].at < keepFrom) this.#readings.shift();
  }

  start(): void {
    void this.#read();
    this.#timer = setInterval(() => void this.#read(), 60_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The last 24 hours, oldest first, each the tokens counted from its start to its end (or now). */
  async series(): Promise<{ hour: Date; count: number }[]> {
    await this.#read();
    const { HOUR } = HourlyTokens;
    const first = Math.floor(this.now() / HOUR) * HOUR - 23 * HOUR;
    // the total at time t: the last reading at or before it (0 before the first)
    const totalAt = (t: number) => this.#readings.filter((r) => r.at <= t).at(-1)?.total ?? 0;
    return Array.from({ length: 24 }, (_, i) => {
      const start = first + i * HOUR;
      return { hour: new Date(start), count: Math.max(0, totalAt(start + HOUR) - totalAt(start)) };
    });
  }
}
