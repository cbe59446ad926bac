import Router from '@koa/router';
import { errors, type default as Provider } from 'oidc-provider';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import type { Upstream } from '../federation/index.js';
import type { Metrics } from '../metrics.js';
import { render } from './views.js';
import { csrfToken } from './csrf.js';
import { PageError, renderPageError, sessionExpired } from './page-error.js';
import { currentInteraction } from './current-interaction.js';
import { upstreamLoginRoutes } from './upstream-login.js';
import { consentRoutes } from './consent.js';

export interface InteractionDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  upstreams: Map<string, Upstream>;
  issuer: string;
  linkVerifiedEmails: boolean;
  logger: Logger;
  metrics?: Metrics;
}

/** Names the views show for scopes. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your account ID)',
  profile: 'See your name, username and picture',
  email: 'See your email address',
  offline_access: 'Stay signed in to the app when you are away',
};

/**
 * The interaction routes: the login page, the upstream round trip, consent.
 * One error boundary renders every refusal (PageError) and every expired or
 * missing interaction (oidc-provider's SessionNotFound) as a page. Every POST
 * checks its CSRF token first, then the prompt it expects; every page is
 * no-store with a strict CSP (views.ts).
 * @see https://github.com/panva/node-oidc-provider/blob/main/example/routes/koa.js
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, upstreams } = deps;
  const router = new Router();

  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof errors.SessionNotFound) return renderPageError(ctx, sessionExpired());
      if (err instanceof PageError) return renderPageError(ctx, err);
      throw err;
    }
  });

  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await currentInteraction(provider, ctx, ctx.params.uid);
    const client = await provider.Client.find(String(interaction.params.client_id));
    const clientName = client?.clientName ?? client?.clientId ?? 'the application';
    const csrf = csrfToken(ctx, interaction.uid);
    if (interaction.prompt.name === 'login') {
      const providers = [...upstreams.values()].map((u) => ({ id: u.id, name: u.name }));
      return render(ctx, 'login', { uid: interaction.uid, clientName, csrf, providers });
    }
    if (interaction.prompt.name === 'consent') {
      const d = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const scopes = (d.missingOIDCScope ?? []).map((s) => SCOPE_TEXT[s] ?? s);
      const apis = await Promise.all(
        Object.entries(d.missingResourceScopes ?? {}).map(async ([identifier, apiScopes]) => ({
          name: (await deps.cache.api(identifier))?.name ?? identifier,
          identifier,
          scopes: apiScopes,
        })),
      );
      return render(ctx, 'consent', { uid: interaction.uid, clientName, csrf, scopes, apis });
    }
    throw new PageError(400, 'That did not work', 'This step of signing in is not supported.');
  });

  upstreamLoginRoutes(router, deps);
  consentRoutes(router, deps);
  return router;
}
