import type { Context, Middleware } from 'koa';
import { render } from './pages.js';

/**
 * A page that cannot go on (a step of signing in, an expired form, a refused
 * change): thrown by a route of any door and rendered once, by the door's
 * error boundary (pageErrors), as the error page with an optional way back.
 */
export class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
    /** where "try again" leads, e.g. the login page of the interaction */
    readonly back?: string,
  ) {
    super(message);
    this.name = 'PageError';
  }
}

export const sessionExpired = () =>
  new PageError(400, 'Your sign-in session has expired', 'Go back to the application and start signing in again.');

export const signInLinkExpired = () =>
  new PageError(400, 'This sign-in link has expired', 'It was already used, or it took too long. Go back to the application and sign in again.');

/** A form whose CSRF token is missing, stale, or another's. */
export const formExpired = (back?: string) => new PageError(403, 'This form has expired', 'Please go back, reload the page and try again.', back);

/** A sign-in that found a disabled account (an admin ran `gatehouse accounts disable`). */
export const accountDisabled = (back?: string) =>
  new PageError(403, 'Account disabled', 'This account is disabled. Contact the administrator.', back);

export function renderPageError(ctx: Context, err: PageError): void {
  render(ctx, 'error', { title: err.title, message: err.message, back: err.back }, err.status);
}

/**
 * A door's error boundary: every PageError (and whatever `recognise` turns
 * into one) becomes the error page; anything else goes on to the site-wide
 * boundary (errorPages), which logs it.
 */
export function pageErrors(recognise: (err: unknown) => PageError | undefined = () => undefined): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const page = err instanceof PageError ? err : recognise(err);
      if (page) return renderPageError(ctx, page);
      throw err;
    }
  };
}
