import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { withActor } from '../services/audit.js';
import { ServiceError, formatProblem } from '../services/errors.js';
import { bootstrapAdmin, consoleAccess } from '../services/roles.js';
import { CONSOLE_CLIENT_ID, consoleUrl } from '../services/built-in-clients.js';
import { formBody } from '../web/form-body.js';
import { PageError, pageErrors } from '../web/page-error.js';
import { firstPartySignIn, type BrowserSession, type FirstPartySignIn } from '../web/first-party-sign-in.js';
import { type ConsoleArea, type ConsoleContext, type ConsoleDeps, type ConsolePerson } from './context.js';
import { overviewArea } from './overview.js';
import { clientsArea } from './clients.js';
import { apisArea } from './apis.js';
import { accountsArea } from './accounts.js';
import { keysArea } from './keys.js';
import { webhooksArea } from './webhooks.js';
import { registrationTokensArea } from './registration-tokens.js';
import { auditArea } from './audit.js';

/**
 * The admin console, /console: server-rendered pages on the same services as
 * the CLI and the management API, for people with an explicit role (`admin`
 * or `viewer`, `gatehouse accounts grant-role`). No JavaScript: plain forms,
 * and a confirmation page before what cannot be undone.
 *
 * One gate runs before every route, on every request:
 * - the person signs in like at /account, through the built-in first-party
 *   client `gatehouse-console` (web/first-party-sign-in.ts);
 * - their role is read live (services/roles.ts consoleAccess): a disabled
 *   account or a removed role is refused on its next request, on every node;
 * - a POST must carry the form token bound to this session and account, and
 *   must come from an `admin`: a viewer's every change is refused here, by the
 *   server, whatever the page shows;
 * - every change runs as the person (withActor), so the audit trail names them.
 */

/** Areas in the order of the navigation; each adds its routes. */
const AREAS: ConsoleArea[] = [overviewArea, clientsArea, apisArea, accountsArea, keysArea, webhooksArea, registrationTokensArea, auditArea];

/** A refusal of a service as the page the person sees (forms that can show problems in place catch `invalid` themselves). */
function servicePage(err: unknown): PageError | undefined {
  if (!(err instanceof ServiceError)) return undefined;
  const status = { not_found: 404, conflict: 409, invalid: 400, stale: 412 }[err.code];
  const message = err.problems.length ? err.problems.map((p) => formatProblem(p)).join('; ') : err.message;
  const title = { not_found: 'Not found', conflict: 'That clashes with what is there', invalid: 'That did not work', stale: 'Someone else changed it first' }[err.code];
  return new PageError(status, title, message, '/console');
}

const noAccess = () =>
  new PageError(403, 'No access to the console', 'Your account has no console role. Ask an administrator to run `gatehouse accounts grant-role` for you, or sign in as someone else.', '/console/sign-in');

const viewerRefused = () => new PageError(403, 'You can look, not change', 'Your role is viewer: the console shows you everything, but only an admin can change it.', '/console');

/** The gate (see above): sets `ctx.state.console` and runs the rest as the person. */
function gate(door: FirstPartySignIn, deps: ConsoleDeps) {
  const parseForm = (ctx: Context) => formBody(ctx, async () => {});
  return async (ctx: Context, next: Next) => {
    if (ctx.path === '/console/sign-in') return door.start(ctx, 'login');
    if (ctx.path === '/console' && ctx.method === 'GET' && door.isReturn(ctx)) return door.finish(ctx);
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && ctx.method !== 'POST') throw new PageError(405, 'That did not work', 'The console takes only GET and POST.', '/console');
    const session = await door.session(ctx);
    if (ctx.method === 'POST') {
      await parseForm(ctx);
      // the form token first: a forged POST learns nothing about the session or the role
      door.checkForm(ctx, session);
    }
    if (!session) return door.start(ctx);
    const person = await personOf(deps, session);
    if (!person) throw noAccess();
    if (ctx.method === 'POST' && person.role !== 'admin') throw viewerRefused();
    (ctx as ConsoleContext).state.console = { person, csrf: door.csrf(ctx, session) };
    await withActor({ type: 'account', id: person.accountId, address: ctx.ip }, next);
  };
}

/** The person behind this session, with a role, read live; the bootstrap admin (CONSOLE_ADMIN_EMAIL) gets theirs on first entry. */
async function personOf(deps: ConsoleDeps, session: BrowserSession): Promise<ConsolePerson | null> {
  const access = await consoleAccess(deps.db, session.accountId);
  if (access || !deps.consoleAdminEmail) return access;
  const granted = await withActor({ type: 'system' }, () => bootstrapAdmin(deps.db, session.accountId, deps.consoleAdminEmail));
  return granted ? consoleAccess(deps.db, session.accountId) : null;
}

/**
 * The console: the gate runs for every path under /console, routes or not, so
 * that even a POST to a path no area answers is checked (form token, role)
 * before anything else; what no area answers is the site's 404 page.
 */
export function consoleRoutes(deps: ConsoleDeps): Middleware {
  const router = new Router();
  const door = firstPartySignIn(deps.provider, { clientId: CONSOLE_CLIENT_ID, path: '/console', redirectUri: consoleUrl(deps.issuer), issuer: deps.issuer });
  for (const area of AREAS) area(router, deps);
  const routes = router.routes() as unknown as Middleware;
  const boundary = pageErrors(servicePage);
  const check = gate(door, deps);
  return (ctx, next) => {
    if (ctx.path !== '/console' && !ctx.path.startsWith('/console/')) return next();
    return boundary(ctx, () => check(ctx, () => routes(ctx, next)));
  };
}
