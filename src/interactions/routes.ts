import Router from '@koa/router';
import type Provider from 'oidc-provider';
import { render } from './views.js';

/**
 * Interaction routes. Until upstream sign-in exists there is nothing a person can
 * do here, so the page says so plainly instead of failing.
 */
export function interactionRoutes(provider: Provider): Router {
  const router = new Router();

  router.get('/interaction/:uid', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const client = await provider.Client.find(String(details.params.client_id));
    render(ctx, 'unavailable', { clientName: client?.clientName ?? client?.clientId ?? 'this application' });
  });

  return router;
}
