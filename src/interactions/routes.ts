import Router from '@koa/router';
import { errors, type default as Provider } from 'oidc-provider';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { HotStatements } from '../storage/hot-statements.js';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import type { Upstream } from '../federation/index.js';
import type { Metrics } from '../metrics.js';
import { render } from '../web/pages.js';
import { PageError, pageErrors, sessionExpired } from '../web/page-error.js';
import { currentInteraction, interactionCsrf } from './current-interaction.js';
import { upstreamLoginRoutes } from './upstream-login.js';
import { consentRoutes } from './consent.js';
import { consentSummary, type ConsentPromptDetails } from './consent-summary.js';
import { resourceServerInfo } from '../oidc/resource-indicators.js';
import { OIDC_SCOPES } from '../common/protocol.js';
import { accountOverview } from '../services/account-page.js';
import { appInfo } from './app-info.js';

export interface InteractionDeps {
  provider: Provider;
  db: Db;
  /** the statements of the hot path: a returning person's sign-in needs no Prisma query */
  hot: HotStatements;
  cache: AdminDataCache;
  upstreams: Map<string, Upstream>;
  issuer: string;
  linkVerifiedEmails: boolean;
  logger: Logger;
  metrics?: Metrics;
}

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

  router.use(pageErrors((err) => (err instanceof errors.SessionNotFound ? sessionExpired() : undefined)));

  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await currentInteraction(provider, ctx, ctx.params.uid);
    const client = await provider.Client.find(String(interaction.params.client_id));
    const app = appInfo(client);
    const clientName = app.name;
    const csrf = interactionCsrf(ctx, interaction.uid);
    if (interaction.prompt.name === 'login') {
      const providers = [...upstreams.values()].map((u) => ({ id: u.id, name: u.name }));
      if (!providers.length) nothingToSignInWith(deps.logger);
      return render(ctx, 'login', { uid: interaction.uid, clientName, app, csrf, providers }, 200, { images: [app.logo] });
    }
    if (interaction.prompt.name === 'consent') {
      const summary = await summarizeConsent(deps, ctx, interaction, client);
      const account = await signedInAccount(deps, interaction.session?.accountId);
      return render(ctx, 'consent', { uid: interaction.uid, clientName, app, csrf, account, ...summary }, 200, { images: [app.logo] });
    }
    throw new PageError(400, 'That did not work', 'This step of signing in is not supported.');
  });

  upstreamLoginRoutes(router, deps);
  consentRoutes(router, deps);
  return router;
}

/** Loggers that have said that no upstream is configured: the operator hears it once, the person never sees variable names. */
const warned = new WeakSet<Logger>();

function nothingToSignInWith(logger: Logger): void {
  if (warned.has(logger)) return;
  warned.add(logger);
  logger.warn(
    'the login page has no way to sign in: set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or OIDC_PROVIDERS (see the README)',
  );
}

/** Who the consent page says is signed in: a name (or username, or email) and the email. */
async function signedInAccount(deps: InteractionDeps, accountId: string | undefined) {
  if (!accountId) return undefined;
  const account = await accountOverview(deps.db, accountId);
  if (!account) return undefined;
  const who = account.name ?? account.username ?? account.email ?? account.identities[0]?.email;
  return { who: who ?? null, email: account.email ?? account.identities[0]?.email ?? null };
}

type Interaction = Awaited<ReturnType<typeof currentInteraction>>;
type Client = Awaited<ReturnType<Provider['Client']['find']>>;

/**
 * The inputs of consentSummary for this interaction: the request, each
 * requested API resolved the way oidc-provider resolves it
 * (getResourceServerInfo), and the grant that confirming extends (consent.ts).
 */
async function summarizeConsent(deps: InteractionDeps, ctx: Context, interaction: Interaction, client: Client) {
  const { provider, cache } = deps;
  const params = interaction.params as { scope?: string; claims?: string; resource?: string | string[] };
  const identifiers = [...new Set(Array.isArray(params.resource) ? params.resource : params.resource ? [params.resource] : [])];
  const info = resourceServerInfo(cache);
  const apis = [];
  for (const identifier of identifiers) {
    if (!client) break;
    // the authorization request resolved it already; one that no longer resolves gets no token
    const server = await info(ctx as never, identifier, client).catch(() => undefined);
    if (!server) continue;
    apis.push({ identifier, name: (await cache.api(identifier))?.name ?? identifier, available: String(server.scope ?? '').split(' ').filter(Boolean) });
  }
  const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
  const granted = grant && {
    oidcScopes: grant.getOIDCScope().split(' ').filter(Boolean),
    claims: grant.getOIDCClaims(),
    resourceScopes: Object.fromEntries(identifiers.map((id) => [id, grant.getResourceScope(id).split(' ').filter(Boolean)])),
  };
  return consentSummary({
    scope: params.scope,
    claims: params.claims,
    oidcScopes: OIDC_SCOPES,
    apis,
    granted,
    missing: interaction.prompt.details as ConsentPromptDetails,
  });
}
