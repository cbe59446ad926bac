import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig } from './config.js';
import { createLogger } from './logger.js';
import { migrate } from './storage/migrate.js';

/**
 * config -> migrations -> one server process, or a primary that starts WORKERS
 * server processes (node:cluster). Workers skip what the primary did once.
 */
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
  if (cluster.isPrimary) {
    if (config.cookieKeysGenerated) {
      logger.warn('COOKIE_KEYS is not set: using random keys for this process only (sessions end on restart)');
    }
    const { applied } = await migrate(config.database);
    if (applied.length) logger.info({ applied }, 'applied database migrations');
    if (config.workers > 1) {
      const { runPrimary } = await import('./primary.js');
      return runPrimary(config, logger);
    }
  }
  const { runServer } = await import('./server.js');
  await runServer(config, logger);
}

main().catch((err: Error) => {
  // One line, no stack: the message says what to fix.
  process.stderr.write(`gatehouse: failed to start: ${err.message}\n`);
  process.exit(1);
});
