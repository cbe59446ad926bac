import type { Middleware } from 'koa';
import type { default as Provider } from 'oidc-provider';
import type { Logger } from 'pino';
import { DatabaseUnavailableError, storageError } from '../storage/errors.js';

/** seconds a client should wait before trying again during an outage */
export const OUTAGE_RETRY_AFTER = 5;
/** ms between two log lines about one outage */
const LOG_EVERY = 10_000;

/**
 * While the database is away, requests that need it get `503
 * temporarily_unavailable` with Retry-After, not 500, and the log gets one
 * line per interval with a count, not one per request. oidc-provider turns
 * any error inside its routes into a 500; it reports the error through its
 * `server_error` event, which marks the request here, and the response is
 * rewritten on its way out.
 */
export class DatabaseOutage {
  #count = 0;
  #since = 0;
  #lastLog = 0;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `err` is the database being away (and counts it, logging at most once per interval). */
  recognise(err: unknown): boolean {
    if (!(storageError(err) instanceof DatabaseUnavailableError)) return false;
    const now = this.now();
    if (this.#count === 0) this.#since = now;
    this.#count += 1;
    if (now - this.#lastLog >= LOG_EVERY) {
      this.#lastLog = now;
      this.logger.error({ failedRequests: this.#count, since: new Date(this.#since).toISOString() }, 'the database is unavailable: answering 503');
      this.#count = 0;
    }
    return true;
  }

  /** Marks oidc-provider requests that failed on the database. */
  observe(provider: Provider): void {
    provider.on('server_error', (ctx, err) => {
      if (this.recognise(err)) ctx.state.databaseUnavailable = true;
    });
  }

  /** In front of everything: the 503 answer for requests that failed on the database. */
  middleware(): Middleware {
    return async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        if (!this.recognise(err)) throw err;
        ctx.state.databaseUnavailable = true;
      }
      if (!ctx.state.databaseUnavailable) return;
      ctx.status = 503;
      ctx.set('Retry-After', String(OUTAGE_RETRY_AFTER));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; try again shortly' };
    };
  }
}
