import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { requireToken, type AuthState } from '../resource-kit/index.js';
import { ServiceError, invalid } from '../services/errors.js';
import { withActor, listAudit } from '../services/audit.js';
import * as clients from '../services/clients.js';
import * as apis from '../services/apis.js';
import * as accounts from '../services/accounts.js';
import * as webhooks from '../services/webhooks/registry.js';
import { listConsents, withdrawConsents } from '../services/consents.js';
import { describeSigningKeys, rotateSigningKeys } from '../services/keys.js';
import { createRegistrationToken, listRegistrationTokens, revokeRegistrationToken } from '../services/registration-tokens.js';
import { DatabaseUnavailableError, storageError } from '../storage/errors.js';
import { adminOpenApi } from './openapi.js';
import { ApiProblem, problemOf, sendProblem } from './problems.js';
import { publicJwk } from '../common/jwk.js';
import { checkManagementToken } from '../services/admin-access.js';
import { PayloadStore } from '../storage/oidc-payloads.js';
import type { HotStatements } from '../storage/hot-statements.js';

/**
 * The management API, /admin/v1: JSON over HTTP for what the CLI does, on the
 * same services (same rules, same messages), protected by Gatehouse's own
 * access tokens for the built-in API `${ISSUER}/admin/v1` through the resource
 * kit (DPoP-bound tokens work too): admin:read for reads, admin:write for
 * changes, checked against live state on every request (services/admin-access.ts).
 * Every change is the admin client's in the audit trail. Objects
 * with versions (clients) carry an ETag; changing them needs If-Match.
 * The contract is openapi.ts.
 */

export const ADMIN_PREFIX = '/admin/v1';
export const ADMIN_SCOPES = ['admin:read', 'admin:write'] as const;
export const adminAudience = (issuer: string) => `${issuer}${ADMIN_PREFIX}`;

export interface AdminDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  issuer: string;
  /** the provider's signing keys (private JWKs): their public halves check the tokens, in process */
  keys: JWK[];
  keyEncryptionKey: Buffer | undefined;
  keyPublishLeadSeconds: number;
  registrationMode: string;
  logger: Logger;
  /** the revocation list of JWT access tokens is read through these */
  hot: HotStatements;
}

type AdminContext = Context & { state: AuthState };


/** A client's version, as an ETag: its last change, to the millisecond. */
const etagOf = (updatedAt: Date) => `"${updatedAt.getTime()}"`;

/** The version an If-Match names; a malformed one names none. */
function ifMatch(ctx: Context): Date | undefined {
  const raw = ctx.get('If-Match');
  if (!raw) return undefined;
  // RFC 9110 §13.1.1: If-Match compares strongly, so a weak tag never matches
  const m = /^"(\d{1,15})"$/.exec(raw.trim());
  if (!m) throw new ApiProblem(412, 'Precondition failed', 'If-Match must be the (strong) ETag this API sent');
  return new Date(Number(m[1]));
}

function requireIfMatch(ctx: Context, what: string): Date {
  const version = ifMatch(ctx);
  if (!version) throw new ApiProblem(428, 'Precondition required', `send If-Match with the ETag of ${what} you read, so that you do not overwrite someone else's change`);
  return version;
}

/** Query parameters as the services take them; a repeated one is a refusal. */
function query(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw invalid([{ path: [name], message: 'give it once' }]);
  return v;
}

function integer(ctx: Context, name: string): number | undefined {
  const v = query(ctx, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw invalid([{ path: [name], message: 'must be a whole number' }]);
  return Number(v);
}

/** The JSON body: an object, or a problem. */
function bodyOf(ctx: Context): Record<string, unknown> {
  const body = (ctx.request as { body?: unknown }).body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiProblem(400, 'The request breaks a rule', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** JSON bodies, up to 100 kB; loaded with the first change (a read-only API never parses one). */
let jsonParser: Middleware | undefined;
async function parseJson(ctx: Context, next: Next): Promise<void> {
  if (!jsonParser) {
    const { bodyParser } = await import('@koa/bodyparser');
    jsonParser = bodyParser({
      enableTypes: ['json'], jsonLimit: '100kb', encoding: 'utf-8',
      onError: (err: Error & { status?: number }) => {
        if (err.status === 413) throw new ApiProblem(413, 'Payload too large', 'the body is larger than 100 kB');
        throw new ApiProblem(400, 'The request breaks a rule', 'the body is not valid JSON');
      },
    }) as unknown as Middleware;
  }
  if (ctx.request.length && !ctx.is('application/json')) throw new ApiProblem(415, 'Unsupported media type', 'send the body as application/json');
  await jsonParser(ctx, next);
}

/** Every failure as a problem: the services' refusals with their messages, the rest without details. */
function problems(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiProblem(404, 'Not found', `no such endpoint: ${ctx.method} ${ctx.path}`);
    } catch (err) {
      if (err instanceof ApiProblem) return sendProblem(ctx, err);
      if (err instanceof ServiceError) return sendProblem(ctx, problemOf(err));
      const status = (err as { status?: number }).status;
      if (status === 413) return sendProblem(ctx, new ApiProblem(413, 'Payload too large', 'the body is larger than 100 kB'));
      if (storageError(err) instanceof DatabaseUnavailableError) {
        return sendProblem(ctx, new ApiProblem(503, 'Service unavailable', 'the database is not available; try again shortly', [], { 'Retry-After': '5' }));
      }
      logger.error({ err, path: ctx.path }, 'management API error');
      sendProblem(ctx, new ApiProblem(500, 'Internal server error', 'something went wrong; the audit trail and logs have the details'));
    }
  };
}

/**
 * The resource kit's check for the built-in admin API, its own refusals
 * rewritten as problems (the WWW-Authenticate challenge stays).
 */
function authorize(deps: AdminDeps, store: PayloadStore, scope: (typeof ADMIN_SCOPES)[number]): Middleware {
  const jwks = JSON.stringify({ keys: deps.keys.map(publicJwk) });
  const check = requireToken({
    issuer: deps.issuer,
    audience: adminAudience(deps.issuer),
    scopes: [scope],
    resourceMetadataUrl: false,
    // the keys are this server's own: no request to itself
    fetch: async () => new Response(jwks, { headers: { 'content-type': 'application/json' } }),
  }) as unknown as Middleware;
  return async (ctx, next) => {
    let passed = false;
    await check(ctx, async () => {
      const auth = (ctx as AdminContext).state.auth;
      // live state: the client still exists, still may, has the same credentials; the token is not revoked
      const refusal = await checkManagementToken({ cache: deps.cache, store }, auth.claims, scope, adminAudience(deps.issuer));
      if (refusal) {
        const challenge = `Bearer error="${refusal.status === 401 ? 'invalid_token' : 'insufficient_scope'}", error_description="${refusal.message.replace(/"/g, "'")}"`;
        throw new ApiProblem(refusal.status, refusal.status === 401 ? 'Unauthorized' : 'Forbidden', refusal.message, [], { 'WWW-Authenticate': challenge });
      }
      passed = true;
      // every change below is this admin client's in the audit trail
      await withActor({ type: 'admin-client', id: auth.clientId, address: ctx.ip }, next);
    });
    if (passed) return;
    const refusal = ctx.body as { error?: string; error_description?: string } | undefined;
    const title = ctx.status === 403 ? 'Forbidden' : ctx.status === 401 ? 'Unauthorized' : 'Refused';
    sendProblem(ctx, new ApiProblem(ctx.status, title, refusal?.error_description ?? refusal?.error ?? 'the access token was refused', [], { 'WWW-Authenticate': ctx.response.get('WWW-Authenticate') }));
  };
}

/** Whatever no route under /admin/v1 answered: a 404 problem, not oidc-provider's page. */
export function adminNotFound(): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== ADMIN_PREFIX && !ctx.path.startsWith(`${ADMIN_PREFIX}/`)) return next();
    sendProblem(ctx, new ApiProblem(404, 'Not found', `no such endpoint: ${ctx.method} ${ctx.path}`));
  };
}

/** Whether a service's lookup found its object (PUT creates what is not there); any other failure stands. */
const found = (lookup: Promise<unknown>): Promise<boolean> => lookup.then(() => true, (err) => {
  if (err instanceof ServiceError && err.code === 'not_found') return false;
  throw err;
});

const withEtag = (ctx: Context, client: clients.ClientRecord) => ctx.set('ETag', etagOf(client.updatedAt));

export function adminRoutes(deps: AdminDeps): Router {
  const router = new Router({ prefix: ADMIN_PREFIX });
  const store = new PayloadStore(deps.hot);
  const reads = authorize(deps, store, 'admin:read');
  const writes = authorize(deps, store, 'admin:write');
  const document = adminOpenApi(deps.issuer);

  router.use(problems(deps.logger));
  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
  });

  router.get('/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = document;
  });

  const gates = { deps, reads, writes };
  clientRoutes(router, gates);
  apiRoutes(router, gates);
  registrationTokenRoutes(router, gates);
  signingKeyRoutes(router, gates);
  consentRoutes(router, gates);
  accountRoutes(router, gates);
  webhookRoutes(router, gates);
  auditRoutes(router, gates);
  return router;
}

/** The route handlers' shared checks: live admin tokens for reads and for writes. */
interface Gates {
  deps: AdminDeps;
  reads: Middleware;
  writes: Middleware;
}

/** Clients. */
function clientRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/clients', reads, async (ctx) => {
    const dynamic = query(ctx, 'dynamic');
    if (dynamic !== undefined && dynamic !== 'true' && dynamic !== 'false') throw invalid([{ path: ['dynamic'], message: 'must be true or false' }]);
    const page = await clients.listClientsPage(db, { after: query(ctx, 'after'), limit: integer(ctx, 'limit'), dynamic: dynamic === undefined ? undefined : dynamic === 'true' });
    ctx.body = { items: page.items.map(clients.publicClient), next: page.next };
  });
  router.post('/clients', writes, parseJson, async (ctx) => {
    const { client, secret } = await clients.createClient(db, bodyOf(ctx));
    deps.cache.clear();
    ctx.status = 201;
    withEtag(ctx, client);
    ctx.set('Location', `${ADMIN_PREFIX}/clients/${encodeURIComponent(client.clientId)}`);
    ctx.body = { ...clients.publicClient(client), ...(secret ? { clientSecret: secret } : {}) };
  });
  router.get('/clients/:clientId', reads, async (ctx) => {
    const client = await clients.findClient(db, ctx.params.clientId);
    withEtag(ctx, client);
    ctx.body = clients.publicClient(client);
  });
  router.put('/clients/:clientId', writes, parseJson, async (ctx) => {
    const id = ctx.params.clientId;
    const fields = bodyOf(ctx);
    if (fields.clientId !== undefined && fields.clientId !== id) throw invalid([{ path: ['clientId'], message: 'must be the client id of the URL, or left out' }]);
    const exists = await found(clients.findClient(db, id));
    if (!exists) {
      const { client, secret } = await clients.createClient(db, { ...fields, clientId: id });
      deps.cache.clear();
      ctx.status = 201;
      withEtag(ctx, client);
      ctx.body = { ...clients.publicClient(client), ...(secret ? { clientSecret: secret } : {}) };
      return;
    }
    const { client } = await clients.updateClient(db, id, fields, { ifVersion: requireIfMatch(ctx, 'the client') });
    deps.cache.clear();
    withEtag(ctx, client);
    ctx.body = clients.publicClient(client);
  });
  router.delete('/clients/:clientId', writes, async (ctx) => {
    await clients.deleteClient(db, ctx.params.clientId, undefined, { ifVersion: requireIfMatch(ctx, 'the client') });
    deps.cache.clear();
    ctx.status = 204;
  });
  router.post('/clients/:clientId/secret', writes, async (ctx) => {
    const clientSecret = await clients.rotateClientSecret(db, ctx.params.clientId);
    deps.cache.clear();
    ctx.body = { clientId: ctx.params.clientId, clientSecret };
  });
}

/** APIs. */
function apiRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/apis', reads, async (ctx) => {
    ctx.body = { items: await apis.listApis(db) };
  });
  router.post('/apis', writes, parseJson, async (ctx) => {
    const api = await apis.createApi(db, bodyOf(ctx));
    deps.cache.clear();
    ctx.status = 201;
    ctx.set('Location', `${ADMIN_PREFIX}/apis/${encodeURIComponent(api.identifier)}`);
    ctx.body = api;
  });
  router.get('/apis/:identifier', reads, async (ctx) => {
    ctx.body = await apis.findApi(db, ctx.params.identifier);
  });
  router.put('/apis/:identifier', writes, parseJson, async (ctx) => {
    const identifier = ctx.params.identifier;
    const fields = bodyOf(ctx);
    if (fields.identifier !== undefined && fields.identifier !== identifier) throw invalid([{ path: ['identifier'], message: 'must be the API identifier of the URL, or left out' }]);
    const exists = await found(apis.findApi(db, identifier));
    if (!exists) {
      const api = await apis.createApi(db, { ...fields, identifier });
      deps.cache.clear();
      ctx.status = 201;
      ctx.body = api;
      return;
    }
    ctx.body = await apis.updateApi(db, identifier, fields);
    deps.cache.clear();
  });
  router.delete('/apis/:identifier', writes, async (ctx) => {
    await apis.deleteApi(db, ctx.params.identifier);
    deps.cache.clear();
    ctx.status = 204;
  });
}

/** Registration tokens (initial access tokens). */
function registrationTokenRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/registration-tokens', reads, async (ctx) => {
    ctx.body = { items: await listRegistrationTokens(db, new Date()) };
  });
  router.post('/registration-tokens', writes, parseJson, async (ctx) => {
    const body = deps.registrationMode === 'initial-access-token' ? bodyOf(ctx) : {};
    const made = await createRegistrationToken(db, deps.registrationMode, body, (options) => new deps.provider.InitialAccessToken(options).save());
    ctx.status = 201;
    ctx.body = made;
  });
  router.delete('/registration-tokens/:prefix', writes, async (ctx) => {
    await revokeRegistrationToken(db, ctx.params.prefix);
    ctx.status = 204;
  });
}

/** Signing keys. */
function signingKeyRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/signing-keys', reads, async (ctx) => {
    ctx.body = { items: await describeSigningKeys(db) };
  });
  router.post('/signing-keys/rotate', writes, async (ctx) => {
    await rotateSigningKeys(db, deps.keyEncryptionKey, { publishLeadSeconds: deps.keyPublishLeadSeconds });
    deps.cache.clear();
    ctx.body = { items: await describeSigningKeys(db) };
  });
}

/** Consents. */
function consentRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  const consentFilter = (ctx: Context) => {
    const account = query(ctx, 'account');
    const client = query(ctx, 'client');
    return { ...(account ? { accountId: account } : {}), ...(client ? { clientId: client } : {}) };
  };
  router.get('/consents', reads, async (ctx) => {
    ctx.body = { items: await listConsents(db, consentFilter(ctx)) };
  });
  router.delete('/consents', writes, async (ctx) => {
    const filter = consentFilter(ctx);
    if (!Object.keys(filter).length) throw invalid([{ path: ['account'], message: 'withdrawing consents needs account or client' }]);
    ctx.body = { items: await withdrawConsents(db, filter) };
  });
}

/** Accounts. */
function accountRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/accounts', reads, async (ctx) => {
    const disabled = query(ctx, 'disabled');
    if (disabled !== undefined && disabled !== 'true') throw invalid([{ path: ['disabled'], message: 'must be true, or left out' }]);
    const limit = integer(ctx, 'limit') ?? 100;
    const items = await accounts.listAccounts(db, { email: query(ctx, 'email'), provider: query(ctx, 'provider'), disabled: disabled === 'true', after: query(ctx, 'after'), limit });
    ctx.body = { items, next: items.length === limit ? items[items.length - 1].id : null };
  });
  router.get('/accounts/:id', reads, async (ctx) => {
    ctx.body = await accounts.showAccount(db, ctx.params.id);
  });
  router.post('/accounts/:id/disable', writes, async (ctx) => {
    ctx.body = await accounts.disableAccount(db, ctx.params.id);
  });
  router.post('/accounts/:id/enable', writes, async (ctx) => {
    ctx.body = await accounts.enableAccount(db, ctx.params.id);
  });
  router.delete('/accounts/:id', writes, async (ctx) => {
    ctx.body = await accounts.deleteAccount(db, ctx.params.id);
  });
}

/** Webhooks. */
function webhookRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/webhooks', reads, async (ctx) => {
    ctx.body = { items: await webhooks.listWebhooks(db) };
  });
  router.post('/webhooks', writes, parseJson, async (ctx) => {
    const { url, events } = bodyOf(ctx);
    const { webhook, secret } = await webhooks.createWebhook(db, { url, events }, deps.keyEncryptionKey);
    ctx.status = 201;
    ctx.set('Location', `${ADMIN_PREFIX}/webhooks/${webhook.id}`);
    ctx.body = { ...webhook, secret };
  });
  router.get('/webhooks/:id', reads, async (ctx) => {
    ctx.body = await webhooks.showWebhook(db, ctx.params.id);
  });
  router.delete('/webhooks/:id', writes, async (ctx) => {
    await webhooks.deleteWebhook(db, ctx.params.id);
    ctx.status = 204;
  });
  router.post('/webhooks/:id/enable', writes, async (ctx) => {
    ctx.body = await webhooks.enableWebhook(db, ctx.params.id);
  });
  router.post('/webhooks/:id/deliveries/:deliveryId/redeliver', writes, async (ctx) => {
    ctx.body = await webhooks.redeliver(db, ctx.params.id, ctx.params.deliveryId);
  });
  router.post('/webhooks/:id/secret', writes, async (ctx) => {
    const { webhook, secret } = await webhooks.rotateWebhookSecret(db, ctx.params.id, deps.keyEncryptionKey);
    ctx.body = { ...webhook, secret };
  });
}

/** The audit trail. */
function auditRoutes(router: Router, { deps, reads, writes }: Gates): void {
  const { db } = deps;
  router.get('/audit-events', reads, async (ctx) => {
    const limit = integer(ctx, 'limit') ?? 100;
    const items = await listAudit(db, {
      action: query(ctx, 'action'), actor: query(ctx, 'actor'), targetType: query(ctx, 'targetType'), target: query(ctx, 'target'),
      outcome: query(ctx, 'outcome'), since: query(ctx, 'since'), until: query(ctx, 'until'), before: query(ctx, 'before'), limit,
    });
    ctx.body = { items, next: items.length === limit ? items[items.length - 1].id : null };
  });
}
