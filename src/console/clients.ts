import type { Context } from 'koa';
import * as clients from '../services/clients.js';
import { listApis } from '../services/apis.js';
import { isBuiltInClient } from '../services/built-in-clients.js';
import type { Problem } from '../services/errors.js';
import { AUTH_METHODS, CLIENT_PROFILES, GRANT_TYPES, PKCE_POLICIES } from '../common/protocol.js';
import {
  consoleError, consolePage, doneRedirect, field, fields, lines, noticeOf, problemLines, queryParam, tryChange, when, words,
  type ConsoleArea, type ConsoleDeps,
} from './context.js';

/**
 * The clients area, /console/clients: list and search, create (a secret is
 * shown once, on the result page), show, edit (with the version the person
 * read: someone else's change in between is refused), rotate the secret and
 * delete (behind confirmation pages). Every change goes through
 * services/clients.ts, as the CLI's and the management API's do.
 */

type ClientRecord = clients.ClientRecord;

/** The client form as the person sees and sends it: text as typed, so a refused form comes back as it was. */
interface ClientForm {
  clientId: string;
  name: string;
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  redirectUris: string;
  postLogoutRedirectUris: string;
  backchannelLogoutUri: string;
  firstParty: boolean;
  resources: string[];
  scopes: string;
  profile: string;
  pkce: string;
  requirePar: boolean;
  jwks: string;
  jwksUri: string;
}

const NEW_FORM: ClientForm = {
  clientId: '', name: '', tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['client_credentials'], redirectUris: '',
  postLogoutRedirectUris: '', backchannelLogoutUri: '', firstParty: false, resources: [], scopes: '', profile: 'default',
  pkce: 'required', requirePar: false, jwks: '', jwksUri: '',
};

/** Notices the list and detail pages show: only these sentences, whatever the query says. */
const NOTICES = [
  'Client created.', 'Client saved.', 'Client deleted.',
  'Client saved. It is third-party now: the consents it had been given without asking were withdrawn.',
];

const clientPath = (clientId: string) => `/console/clients/${encodeURIComponent(clientId)}`;

function formOfClient(c: ClientRecord): ClientForm {
  return {
    clientId: c.clientId, name: c.name, tokenEndpointAuthMethod: c.tokenEndpointAuthMethod, grantTypes: c.grantTypes,
    redirectUris: c.redirectUris.join('\n'), postLogoutRedirectUris: c.postLogoutRedirectUris.join('\n'),
    backchannelLogoutUri: c.backchannelLogoutUri ?? '', firstParty: c.firstParty, resources: c.resources, scopes: c.scopes.join(' '),
    profile: c.profile, pkce: c.pkce, requirePar: c.requirePar, jwks: c.jwks ? JSON.stringify(c.jwks, null, 2) : '', jwksUri: c.jwksUri ?? '',
  };
}

function formOfRequest(ctx: Context): ClientForm {
  return {
    clientId: field(ctx, 'clientId'), name: field(ctx, 'name'), tokenEndpointAuthMethod: field(ctx, 'tokenEndpointAuthMethod'),
    grantTypes: fields(ctx, 'grantTypes'), redirectUris: field(ctx, 'redirectUris'), postLogoutRedirectUris: field(ctx, 'postLogoutRedirectUris'),
    backchannelLogoutUri: field(ctx, 'backchannelLogoutUri'), firstParty: field(ctx, 'firstParty') !== '', resources: fields(ctx, 'resources'),
    scopes: field(ctx, 'scopes'), profile: field(ctx, 'profile'), pkce: field(ctx, 'pkce'), requirePar: field(ctx, 'requirePar') !== '',
    jwks: field(ctx, 'jwks'), jwksUri: field(ctx, 'jwksUri'),
  };
}

/**
 * The form as the client service takes it. JSON the form cannot read is a
 * problem of its own; the text goes on as it is, so that the service refuses
 * it too and lists every other problem beside it.
 */
function serviceFields(f: ClientForm): { input: Record<string, unknown>; problems: Problem[] } {
  let jwks: unknown = null;
  const problems: Problem[] = [];
  if (f.jwks) {
    try {
      jwks = JSON.parse(f.jwks);
    } catch {
      jwks = f.jwks;
      problems.push({ path: ['jwks'], message: 'must be a JWK Set in JSON: {"keys": [ ... ]}' });
    }
  }
  const input = {
    ...(f.clientId ? { clientId: f.clientId } : {}), name: f.name, tokenEndpointAuthMethod: f.tokenEndpointAuthMethod, grantTypes: f.grantTypes,
    redirectUris: lines(f.redirectUris), postLogoutRedirectUris: lines(f.postLogoutRedirectUris), backchannelLogoutUri: f.backchannelLogoutUri || null,
    firstParty: f.firstParty, resources: f.resources, scopes: words(f.scopes), profile: f.profile, pkce: f.pkce, requirePar: f.requirePar,
    jwks, jwksUri: f.jwksUri || null,
  };
  return { input, problems };
}

const STALE = 'Someone else changed this client after you opened this page: reload it to see their change, then make yours again.';

interface FormPage {
  form: ClientForm;
  /** editing this client (else creating one) */
  client?: ClientRecord;
  /** the version the person read (hidden in the form) */
  version?: number;
  problems?: string[];
}

async function showForm(ctx: Context, deps: ConsoleDeps, page: FormPage, status = 200): Promise<void> {
  const apis = await listApis(deps.db);
  const editing = page.client ? { clientId: page.client.clientId, builtIn: isBuiltInClient(page.client.clientId), path: clientPath(page.client.clientId) } : null;
  consolePage(ctx, 'clients', 'clients-form', {
    form: page.form, editing, version: page.version, problems: page.problems,
    apis: apis.map((a) => ({ identifier: a.identifier, name: a.name, scopes: a.scopes })),
    authMethods: AUTH_METHODS, grantTypes: GRANT_TYPES, profiles: CLIENT_PROFILES, pkcePolicies: PKCE_POLICIES,
  }, status);
}

/** The version (the client's last change, in ms) a form carried. */
function versionOf(ctx: Context): Date {
  const v = field(ctx, 'version');
  if (!/^\d{1,15}$/.test(v)) throw consoleError(400, 'That did not work', 'The form did not say which version of the client it changes. Please reload it and try again.', '/console/clients');
  return new Date(Number(v));
}

/** Every setting of a client, as label and value(s), for the detail page. */
function factsOf(c: ClientRecord): { label: string; value?: string; values?: string[]; code?: boolean; json?: string }[] {
  const yesNo = (b: boolean) => (b ? 'yes' : 'no');
  const time = (d: Date | null) => when(d)?.text ?? '—';
  return [
    { label: 'Client id', value: c.clientId, code: true },
    { label: 'Name', value: c.name },
    { label: 'Version (ETag)', value: `"${c.updatedAt.getTime()}"`, code: true },
    { label: 'Authentication', value: c.tokenEndpointAuthMethod, code: true },
    { label: 'Has a secret', value: yesNo(c.secretHash !== null) },
    { label: 'Grant types', values: c.grantTypes, code: true },
    { label: 'Redirect URIs', values: c.redirectUris, code: true },
    { label: 'Post-logout redirect URIs', values: c.postLogoutRedirectUris, code: true },
    { label: 'Back-channel logout URI', value: c.backchannelLogoutUri ?? '—', code: Boolean(c.backchannelLogoutUri) },
    { label: 'First-party', value: yesNo(c.firstParty) },
    { label: 'APIs', values: c.resources, code: true },
    { label: 'Scopes', values: c.scopes.length ? c.scopes : ['every scope of its APIs'], code: c.scopes.length > 0 },
    { label: 'Profile', value: c.profile },
    { label: 'PKCE', value: c.pkce },
    { label: 'Only pushed authorization requests (PAR)', value: yesNo(c.requirePar) },
    { label: 'Public keys (JWKS)', ...(c.jwks ? { json: JSON.stringify(c.jwks, null, 2) } : { value: '—' }) },
    { label: 'JWKS URI', value: c.jwksUri ?? '—', code: Boolean(c.jwksUri) },
    { label: 'Registered by the app itself', value: yesNo(c.dynamic) },
    { label: 'Registered metadata', ...(Object.keys(c.metadata).length ? { json: JSON.stringify(c.metadata, null, 2) } : { value: '—' }) },
    { label: 'Created', value: time(c.createdAt) },
    { label: 'Last changed', value: time(c.updatedAt) },
    { label: 'Credentials last changed', value: time(c.credentialsChangedAt) },
  ];
}

/** What a page says about a client beside its settings. */
const summaryOf = (c: ClientRecord) => ({
  clientId: c.clientId, name: c.name, path: clientPath(c.clientId), version: c.updatedAt.getTime(),
  builtIn: isBuiltInClient(c.clientId), usesSecret: clients.usesSecret(c), dynamic: c.dynamic,
});

async function listPage(ctx: Context, deps: ConsoleDeps): Promise<void> {
  const q = queryParam(ctx, 'q');
  const after = queryParam(ctx, 'after');
  let page: { items: ClientRecord[]; next: string | null };
  if (q) {
    const needle = q.toLowerCase();
    const items = (await clients.listClients(deps.db)).filter((c) => c.clientId.toLowerCase().includes(needle) || c.name.toLowerCase().includes(needle));
    page = { items, next: null };
  } else {
    page = await clients.listClientsPage(deps.db, { after });
  }
  consolePage(ctx, 'clients', 'clients', {
    q: q ?? '', after, next: page.next, notice: noticeOf(ctx, NOTICES),
    clients: page.items.map((c) => ({ ...summaryOf(c), firstParty: c.firstParty, grantTypes: c.grantTypes })),
  });
}

/** The confirmation page of a delete or a secret rotation. */
function confirmPage(ctx: Context, c: ClientRecord, action: 'delete' | 'rotate-secret', problems?: string[], status = 200): void {
  consolePage(ctx, 'clients', 'clients-confirm', { client: summaryOf(c), action, problems }, status);
}

function addChangeRoutes(router: Parameters<ConsoleArea>[0], deps: ConsoleDeps): void {
  const { db } = deps;
  router.get('/console/clients/:id/edit', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    await showForm(ctx, deps, { form: formOfClient(client), client, version: client.updatedAt.getTime() });
  });
  router.post('/console/clients/:id/edit', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    const version = versionOf(ctx);
    const form = { ...formOfRequest(ctx), clientId: '' };
    const { input, problems } = serviceFields(form);
    const result = await tryChange(() => clients.updateClient(db, client.clientId, input, { ifVersion: version }), ['invalid', 'stale']);
    const page = { form, client, version: version.getTime() };
    if ('refused' in result) {
      if (result.refused === 'stale') return showForm(ctx, deps, { ...page, problems: [STALE] }, 409);
      return showForm(ctx, deps, { ...page, problems: problemLines(result.problems, problems) }, 400);
    }
    deps.cache.clear();
    doneRedirect(ctx, clientPath(client.clientId), NOTICES[result.done.withdrawnConsents ? 3 : 1]);
  });
  router.get('/console/clients/:id/rotate-secret', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    if (!clients.usesSecret(client)) throw consoleError(400, 'This client has no secret', `It authenticates with ${client.tokenEndpointAuthMethod}.`, clientPath(client.clientId));
    confirmPage(ctx, client, 'rotate-secret');
  });
  router.post('/console/clients/:id/rotate-secret', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    const secret = await clients.rotateClientSecret(db, client.clientId);
    deps.cache.clear();
    consolePage(ctx, 'clients', 'clients-secret', { client: summaryOf(client), secret, created: false });
  });
  router.get('/console/clients/:id/delete', async (ctx) => {
    confirmPage(ctx, await clients.findClient(db, ctx.params.id), 'delete');
  });
  router.post('/console/clients/:id/delete', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    const result = await tryChange(() => clients.deleteClient(db, client.clientId, undefined, { ifVersion: versionOf(ctx) }), ['stale']);
    // the page again, with what the client is now: the person decides again
    if ('refused' in result) return confirmPage(ctx, await clients.findClient(db, client.clientId), 'delete', [STALE], 409);
    deps.cache.clear();
    doneRedirect(ctx, '/console/clients', NOTICES[2]);
  });
}

export const clientsArea: ConsoleArea = (router, deps) => {
  const { db } = deps;
  router.get('/console/clients', (ctx) => listPage(ctx, deps));
  // /+new: no client id holds a "+", so the form never hides a client's own page
  router.get('/console/clients/\\+new', async (ctx) => {
    await showForm(ctx, deps, { form: NEW_FORM });
  });
  router.post('/console/clients/\\+new', async (ctx) => {
    const form = formOfRequest(ctx);
    const { input, problems } = serviceFields(form);
    const result = await tryChange(() => clients.createClient(db, input), ['invalid', 'conflict']);
    if ('refused' in result) return showForm(ctx, deps, { form, problems: problemLines(result.problems, problems) }, result.refused === 'conflict' ? 409 : 400);
    deps.cache.clear();
    const { client, secret } = result.done;
    // a secret is shown on this page, once: never in a redirect
    if (secret) return consolePage(ctx, 'clients', 'clients-secret', { client: summaryOf(client), secret, created: true });
    doneRedirect(ctx, clientPath(client.clientId), NOTICES[0]);
  });
  router.get('/console/clients/:id', async (ctx) => {
    const client = await clients.findClient(db, ctx.params.id);
    consolePage(ctx, 'clients', 'clients-detail', { client: summaryOf(client), facts: factsOf(client), notice: noticeOf(ctx, NOTICES) });
  });
  addChangeRoutes(router, deps);
};
