import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { ConfigError, parseConfig } from './config.js';
import { createLogger } from './logger.js';
import { openDatabase } from './storage/database.js';
import { migrate } from './storage/migrate.js';

/** config -> database -> migrations -> app -> listen; SIGTERM drains. */
async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config;
  try {
    config = parseConfig(process.env, () => randomBytes(32).toString('base64url'));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.cookieKeysGenerated) {
    logger.warn('COOKIE_KEYS is not set: using random keys for this process only (sessions end on restart)');
  }

  const { applied } = await migrate(config.database);
  if (applied.length) logger.info({ applied }, 'applied database migrations');

  const database = openDatabase(config.database, {
    onConnectionError: (err) => logger.warn({ err }, 'database connection lost'),
  });
  // Imported only once the configuration is known good, so a configuration
  // error is the only thing printed (oidc-provider may print a runtime notice).
  const { createApp } = await import('./app.js');
  const app = await createApp({ config, database, logger });
  await app.start();

  const server = createServer(app.callback());
  // Longer than a load balancer's idle timeout (often 60 s), so the server never
  // closes a kept-alive connection the balancer is about to reuse; in ms.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(config.port, config.host, () => {
    logger.info({ issuer: config.issuer, port: config.port, database: config.database.kind }, 'gatehouse is listening');
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    app.stop();
    const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    server.close(async () => {
      await database.close();
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: Error) => {
  // One line, no stack: the message says what to fix.
  process.stderr.write(`gatehouse: failed to start: ${err.message}\n`);
  process.exit(1);
});
