import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import { renderRegistry, serveMetrics, shareWithPrimary } from './metrics.js';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, type Database } from './storage/database.js';
import type { App } from './app.js';

/**
 * One server process: the whole app on the configured port. Run on its own
 * (WORKERS=1) or as a node:cluster worker, which shares the port with its
 * siblings. SIGTERM (or the primary going away) drains in-flight requests,
 * then exits 0, also while the process is still starting.
 */
/**
 * How long a client may take, in ms: 10 s to send its headers (slow-header
 * clients), 30 s for the whole request with its body (a trickled body no
 * longer holds a socket for Node's default 5 minutes), checked every second.
 */
export const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 } as const;

export async function runServer(config: Config, logger: Logger): Promise<void> {
  let database: Database | undefined;
  let app: App | undefined;
  let server: Server | undefined;
  let metricsServer: Server | undefined;

  let stopping = false;
  const exit = async () => {
    metricsServer?.close();
    await app?.stop();
    await database?.close();
    logger.info('stopped');
    process.exit(0);
  };
  const shutdown = (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'draining in-flight requests');
    if (!server?.listening) return void exit();
    const force = setTimeout(() => server!.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    server.close(() => void exit());
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // a worker whose primary is gone stops too, rather than serving unsupervised
  process.on('disconnect', () => shutdown('primary gone'));

  // Imported only once the configuration is known good, so a configuration
  // error is the only thing printed (oidc-provider may print a runtime notice);
  // loaded while the database client of the configured kind loads.
  const [opened, { createApp }] = await Promise.all([
    openDatabase(config.database, {
      onConnectionError: (err) => logger.warn({ err }, 'database connection lost'),
    }),
    import('./app.js'),
  ]);
  database = opened;
  app = await createApp({ config, database, logger });
  await app.start();
  if (stopping) return void exit();
  // a worker's metrics are served, summed over all workers, by the primary
  if (cluster.isWorker) shareWithPrimary(app.metrics.registry);
  else if (config.metrics) {
    metricsServer = await serveMetrics(config.metrics.port, config.metrics.host, renderRegistry(app.metrics.registry));
    logger.info({ host: config.metrics.host, port: config.metrics.port }, 'metrics are served at /metrics');
  }

  server = createServer({ ...SERVER_TIMEOUTS }, app.callback());
  // Longer than a load balancer's idle timeout (often 60 s), so the server never
  // closes a kept-alive connection the balancer is about to reuse; in ms.
  server.keepAliveTimeout = 65_000;
  server.listen(config.port, config.host, () => {
    logger.info({ issuer: config.issuer, port: config.port, database: config.database.kind }, 'gatehouse is listening');
  });
}
