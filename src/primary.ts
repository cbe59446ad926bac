import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase } from './storage/database.js';
import { ensureSigningKeys } from './services/keys.js';
import { serveClusterLimits } from './limits/index.js';
import { Counter, Registry } from 'prom-client';
import { aggregateWorkers, serveMetrics } from './metrics.js';

/**
 * The node:cluster primary (WORKERS > 1). It serves nothing itself: it makes
 * sure signing keys exist, once, then starts the workers, replaces one that
 * dies (after a growing pause, so a worker that crashes at start does not spin),
 * and on SIGTERM drains every worker before it exits.
 */

/** ms: the first pause before a restart, doubled for each quick death up to MAX_BACKOFF */
const FIRST_BACKOFF = 100;
const MAX_BACKOFF = 30_000;
/** ms: a worker that lived this long was healthy; the pause starts over */
const HEALTHY_AFTER = 30_000;

export async function runPrimary(config: Config, logger: Logger): Promise<void> {
  const database = await openDatabase(config.database);
  try {
    await ensureSigningKeys(database.prisma, config.keyEncryptionKey);
  } finally {
    await database.close();
  }

  // the primary's own metric; the workers' are summed in aggregateWorkers
  const registry = new Registry();
  const restarts = new Counter({ name: 'gatehouse_worker_restarts_total', help: 'workers that exited and were replaced', registers: [registry] });
  const metricsServer = config.metrics ? await serveMetrics(config.metrics.port, config.metrics.host, aggregateWorkers(registry)) : undefined;
  if (config.metrics) logger.info({ host: config.metrics.host, port: config.metrics.port }, 'metrics of every worker are served at /metrics');

  let stopping = false;
  let backoff = FIRST_BACKOFF;
  const startedAt = new Map<Worker, number>();

  // Workers must share the cookie keys; keys generated for this run (no
  // COOKIE_KEYS, development only) are handed to them.
  const workerEnv = config.cookieKeysGenerated ? { COOKIE_KEYS: config.cookieKeys.join(',') } : {};
  const fork = () => {
    const worker = cluster.fork(workerEnv);
    startedAt.set(worker, Date.now());
    worker.on('exit', (code, signal) => {
      const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
      startedAt.delete(worker);
      if (stopping) return;
      backoff = lived >= HEALTHY_AFTER ? FIRST_BACKOFF : Math.min(backoff * 2, MAX_BACKOFF);
      const pause = lived >= HEALTHY_AFTER ? 0 : backoff;
      logger.error({ pid: worker.process.pid, code, signal, livedMs: lived, restartInMs: pause }, 'worker exited; starting another');
      restarts.inc();
      setTimeout(() => {
        if (!stopping) fork();
      }, pause).unref();
    });
  };
  // without Redis, the workers share their rate limits through this process
  if (!config.redisUrl) serveClusterLimits();
  for (let i = 0; i < config.workers; i++) fork();
  logger.info({ workers: config.workers, port: config.port }, 'gatehouse primary started its workers');

  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining every worker');
    const workers = [...startedAt.keys()];
    const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.process.kill('SIGTERM');
    // workers force-close connections after SHUTDOWN_TIMEOUT_MS; this is the backstop
    const force = setTimeout(() => workers.forEach((w) => w.process.kill('SIGKILL')), config.shutdownTimeoutMs + 5_000);
    force.unref();
    metricsServer?.close();
    void Promise.all(exited).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
