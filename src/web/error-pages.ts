import Koa, { type Middleware } from 'koa';
import { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { render } from './pages.js';
import { requestIdOf } from './request-id.js';

/** Status and what may be shown of an error from Gatehouse's own routes. */
function describeError(err: unknown): { status: number; message?: string } {
  if (err instanceof errors.OIDCProviderError) return { status: err.status, message: err.error_description };
  if (err instanceof Koa.HttpError) return { status: err.status, message: err.expose ? err.message : undefined };
  return { status: 500 };
}

export interface Outage {
  /** whether this error means the database is away */
  recognise(err: unknown): boolean;
  /** seconds a client should wait */
  retryAfter: number;
}

/**
 * The site-wide boundary of every page-rendering door: whatever a door's own
 * boundary (pageErrors) did not turn into a page becomes one here, never a
 * stack trace: what happened, what the person can do, and the request id
 * (error.eta), which is also in the log line.
 */
export function errorPages(logger: Logger, outage: Outage): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (outage.recognise(err)) {
        ctx.set('Retry-After', String(outage.retryAfter));
        return render(ctx, 'error', {
          title: 'Please try again in a moment',
          message: 'The service is busy right now.',
          advice: 'Nothing you did is lost: try again in a few seconds.',
        }, 503);
      }
      const { status, message } = describeError(err);
      if (status >= 500) logger.error({ err, path: ctx.path, requestId: requestIdOf(ctx) }, 'unhandled error');
      if (status === 404) {
        return render(ctx, 'error', {
          title: 'Page not found',
          message: 'There is no page at this address.',
          advice: 'Check the address, or go back to the application you came from.',
        }, status);
      }
      render(ctx, 'error', {
        title: status < 500 ? 'That did not work' : 'Something went wrong',
        message: (status < 500 && message) || (status < 500 ? 'The request could not be handled.' : 'Something went wrong on our side; it was not your fault.'),
        advice: 'Go back to the application and try again. If it keeps happening, contact whoever runs this server.',
      }, status);
    }
  };
}
