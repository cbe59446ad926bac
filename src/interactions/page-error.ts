import type { Context } from 'koa';
import { render } from './views.js';

/**
 * A step of signing in that cannot go on: thrown by an interaction route and
 * rendered once, by the router's error boundary, as the error page with an
 * optional way back.
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

/** A sign-in that found a disabled account (an admin ran `gatehouse accounts disable`). */
export const accountDisabled = (back?: string) =>
  new PageError(403, 'Account disabled', 'This account is disabled. Contact the administrator.', back);

export function renderPageError(ctx: Context, err: PageError): void {
  render(ctx, 'error', { title: err.title, message: err.message, back: err.back }, err.status);
}
