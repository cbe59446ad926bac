import type { Context } from 'koa';
import * as apis from '../services/apis.js';
import { listClients } from '../services/clients.js';
import type { Problem } from '../services/errors.js';
import { SIGNING_ALGS, TOKEN_FORMATS } from '../common/protocol.js';
import {
  consolePage, doneRedirect, field, noticeOf, problemLines, tryChange, words, type ConsoleArea, type ConsoleDeps,
} from './context.js';

/**
 * The APIs area, /console/apis: the resource servers clients get tokens for.
 * List, create, show, edit and delete (behind a confirmation page), through
 * services/apis.ts, as the CLI and the management API do.
 */

type ApiRecord = apis.ApiRecord;

/** The API form as typed, so a refused form comes back as it was. */
interface ApiForm {
  identifier: string;
  name: string;
  scopes: string;
  accessTokenTtl: string;
  tokenFormat: string;
  signingAlg: string;
  introspectors: string;
  allowRegisteredClients: boolean;
}

const NEW_FORM: ApiForm = { identifier: '', name: '', scopes: '', accessTokenTtl: '600', tokenFormat: 'jwt', signingAlg: 'ES256', introspectors: '', allowRegisteredClients: false };

const NOTICES = ['API created.', 'API saved.', 'API deleted.'];

const apiPath = (identifier: string) => `/console/apis/${encodeURIComponent(identifier)}`;

const formOfApi = (a: ApiRecord): ApiForm => ({
  identifier: a.identifier, name: a.name, scopes: a.scopes.join(' '), accessTokenTtl: String(a.accessTokenTtl), tokenFormat: a.tokenFormat,
  signingAlg: a.signingAlg, introspectors: a.introspectors.join(' '), allowRegisteredClients: a.allowRegisteredClients,
});

const formOfRequest = (ctx: Context): ApiForm => ({
  identifier: field(ctx, 'identifier'), name: field(ctx, 'name'), scopes: field(ctx, 'scopes'), accessTokenTtl: field(ctx, 'accessTokenTtl'),
  tokenFormat: field(ctx, 'tokenFormat'), signingAlg: field(ctx, 'signingAlg'), introspectors: field(ctx, 'introspectors'),
  allowRegisteredClients: field(ctx, 'allowRegisteredClients') !== '',
});

/**
 * The form as the API service takes it (empty fields left out: the service's
 * defaults). A lifetime that is not a number goes on as text, for the
 * service to refuse beside every other problem; the form says what it wants.
 */
function serviceFields(f: ApiForm): { input: Record<string, unknown>; problems: Problem[] } {
  const ttl = /^\d{1,9}$/.test(f.accessTokenTtl) ? Number(f.accessTokenTtl) : f.accessTokenTtl || undefined;
  const problems: Problem[] = typeof ttl === 'string' ? [{ path: ['accessTokenTtl'], message: 'must be a whole number of seconds (60 to 86400)' }] : [];
  const input = {
    identifier: f.identifier, ...(f.name ? { name: f.name } : {}), scopes: words(f.scopes), ...(ttl === undefined ? {} : { accessTokenTtl: ttl }),
    tokenFormat: f.tokenFormat, signingAlg: f.signingAlg, introspectors: words(f.introspectors), allowRegisteredClients: f.allowRegisteredClients,
  };
  return { input, problems };
}

function showForm(ctx: Context, page: { form: ApiForm; editing?: ApiRecord; problems?: string[] }, status = 200): void {
  const editing = page.editing ? { identifier: page.editing.identifier, path: apiPath(page.editing.identifier) } : null;
  consolePage(ctx, 'apis', 'apis-form', { form: page.form, editing, problems: page.problems, tokenFormats: TOKEN_FORMATS, signingAlgs: SIGNING_ALGS }, status);
}

/** Every setting of an API, as label and value(s), for the detail page. */
function factsOf(a: ApiRecord, usedBy: string[]): { label: string; value?: string; values?: string[]; code?: boolean }[] {
  return [
    { label: 'Identifier (audience)', value: a.identifier, code: true },
    { label: 'Name', value: a.name },
    { label: 'Scopes', values: a.scopes, code: true },
    { label: 'Access-token lifetime', value: `${a.accessTokenTtl} seconds` },
    { label: 'Token format', value: a.tokenFormat },
    { label: 'Signing algorithm', value: a.signingAlg },
    { label: 'Clients that may introspect its tokens', values: a.introspectors, code: true },
    { label: 'Apps that registered themselves get tokens for it', value: a.allowRegisteredClients ? 'yes' : 'no' },
    { label: 'Clients given this API', values: usedBy, code: true },
  ];
}

const summaryOf = (a: ApiRecord) => ({ identifier: a.identifier, name: a.name, path: apiPath(a.identifier) });

async function usersOf(deps: ConsoleDeps, identifier: string): Promise<string[]> {
  return (await listClients(deps.db)).filter((c) => c.resources.includes(identifier)).map((c) => c.clientId);
}

function deletePage(ctx: Context, api: ApiRecord, problems?: string[], status = 200): void {
  consolePage(ctx, 'apis', 'apis-delete', { api: summaryOf(api), problems }, status);
}

export const apisArea: ConsoleArea = (router, deps) => {
  const { db } = deps;
  router.get('/console/apis', async (ctx) => {
    const list = await apis.listApis(db);
    consolePage(ctx, 'apis', 'apis', { apis: list.map((a) => ({ ...summaryOf(a), scopes: a.scopes, tokenFormat: a.tokenFormat })), notice: noticeOf(ctx, NOTICES) });
  });
  router.get('/console/apis/new', (ctx) => {
    showForm(ctx, { form: NEW_FORM });
  });
  router.post('/console/apis/new', async (ctx) => {
    const form = formOfRequest(ctx);
    const { input, problems } = serviceFields(form);
    const result = await tryChange(() => apis.createApi(db, input), ['invalid', 'conflict']);
    if ('refused' in result) return showForm(ctx, { form, problems: problemLines(result.problems, problems) }, result.refused === 'conflict' ? 409 : 400);
    deps.cache.clear();
    doneRedirect(ctx, apiPath(result.done.identifier), NOTICES[0]);
  });
  router.get('/console/apis/:identifier', async (ctx) => {
    const api = await apis.findApi(db, ctx.params.identifier);
    consolePage(ctx, 'apis', 'apis-detail', { api: summaryOf(api), facts: factsOf(api, await usersOf(deps, api.identifier)), notice: noticeOf(ctx, NOTICES) });
  });
  router.get('/console/apis/:identifier/edit', async (ctx) => {
    const api = await apis.findApi(db, ctx.params.identifier);
    showForm(ctx, { form: formOfApi(api), editing: api });
  });
  router.post('/console/apis/:identifier/edit', async (ctx) => {
    const api = await apis.findApi(db, ctx.params.identifier);
    const form = { ...formOfRequest(ctx), identifier: api.identifier };
    const { input, problems } = serviceFields(form);
    // a scope a client still uses cannot be dropped (conflict): shown in place too
    const result = await tryChange(() => apis.updateApi(db, api.identifier, input), ['invalid', 'conflict']);
    if ('refused' in result) return showForm(ctx, { form, editing: api, problems: problemLines(result.problems, problems) }, result.refused === 'conflict' ? 409 : 400);
    deps.cache.clear();
    doneRedirect(ctx, apiPath(api.identifier), NOTICES[1]);
  });
  router.get('/console/apis/:identifier/delete', async (ctx) => {
    deletePage(ctx, await apis.findApi(db, ctx.params.identifier));
  });
  router.post('/console/apis/:identifier/delete', async (ctx) => {
    const api = await apis.findApi(db, ctx.params.identifier);
    // an API a client still uses stays (conflict): the page says which
    const result = await tryChange(() => apis.deleteApi(db, api.identifier), ['conflict']);
    if ('refused' in result) return deletePage(ctx, api, problemLines(result.problems), 409);
    deps.cache.clear();
    doneRedirect(ctx, '/console/apis', NOTICES[2]);
  });
};
