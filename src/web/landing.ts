import type { Middleware } from 'koa';
import { render } from './pages.js';

/**
 * `/`: a small page that says what this server is and where its public
 * documents are (discovery, JWKS) and where a person manages their account.
 * Same layout, CSP and no-store as every other page.
 */
export function landingPage(issuer: string): Middleware {
  const links = {
    discovery: `${issuer}/.well-known/openid-configuration`,
    jwks: `${issuer}/jwks`,
    account: '/account',
  };
  return async (ctx, next) => {
    if (ctx.path !== '/' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    render(ctx, 'landing', { links });
  };
}
