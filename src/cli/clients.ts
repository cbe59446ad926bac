import { randomBytes } from 'node:crypto';
import type { Db } from '../storage/database.js';
import {
  createClient, deleteClient, findClient, listClients, publicClient, updateClient,
  type ClientData, type ClientRecord,
} from '../storage/clients.js';
import { listResources } from '../storage/resources.js';
import { revokeConsents } from '../storage/consents.js';
import { clientInput, clientReferenceProblems } from '../storage/validation.js';
import { generateSecret, hashSecret } from '../oidc/client-secrets.js';
import { CliError, describe, flagIssues, onePositional, output, parse, usageError, withDatabase, type Options, type Values } from './context.js';

export const CLIENTS_HELP = `Usage: gatehouse clients <command> [options]

Commands:
  create              register a client; a confidential client's secret is shown once
  list                list clients
  show <client-id>    show one client
  update <client-id>  change a client (list options replace the whole list;
                      give one empty value, e.g. --redirect-uri '', to clear it)
  delete <client-id>  delete a client
  rotate-secret <client-id>
                      replace the secret; the old one stops working within a second

Options for create and update:
  --name <text>           display name (required for create)
  --id <client-id>        client id (create; default: random)
  --grant-type <type>     client_credentials | authorization_code | refresh_token |
                          urn:ietf:params:oauth:grant-type:device_code (repeatable;
                          default client_credentials)
  --redirect-uri <uri>    https, or http on localhost; no fragment (repeatable)
  --auth-method <method>  client_secret_basic (default) | client_secret_post | none (public)
  --resource <uri>        an API this client may get tokens for (repeatable)
  --scope <scope>         limit the client to these API scopes (repeatable; default: all)
  --post-logout-redirect-uri <uri>
                          where RP-initiated logout may return to (repeatable)
  --backchannel-logout-uri <uri>
                          OpenID Connect back-channel logout endpoint
  --require-par           only accept pushed authorization requests (RFC 9126)
  --no-require-par        (update) accept plain authorization requests again
  --first-party           skip consent for this client
  --third-party           (update) ask for consent again
  --json                  machine-readable output
`;

const fieldOptions: Options = {
  name: { type: 'string' },
  'grant-type': { type: 'string', multiple: true },
  'redirect-uri': { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  resource: { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  'first-party': { type: 'boolean' },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'backchannel-logout-uri': { type: 'string' },
  'require-par': { type: 'boolean' },
};

/** A repeatable flag's values; `--flag ''` alone clears the list. */
const list = (v: Values[string]) => (Array.isArray(v) ? v.filter((x) => x !== '') : v);

/** Flag values to client fields; only the flags given. */
function fieldsFromFlags(v: Values): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (v.name !== undefined) fields.name = v.name;
  if (v['grant-type'] !== undefined) fields.grantTypes = list(v['grant-type']);
  if (v['redirect-uri'] !== undefined) fields.redirectUris = list(v['redirect-uri']);
  if (v['auth-method'] !== undefined) fields.tokenEndpointAuthMethod = v['auth-method'];
  if (v.resource !== undefined) fields.resources = list(v.resource);
  if (v.scope !== undefined) fields.scopes = list(v.scope);
  if (v['post-logout-redirect-uri'] !== undefined) fields.postLogoutRedirectUris = list(v['post-logout-redirect-uri']);
  if (v['backchannel-logout-uri'] !== undefined) fields.backchannelLogoutUri = v['backchannel-logout-uri'] || null;
  if (v['require-par']) fields.requirePar = true;
  if (v['no-require-par']) fields.requirePar = false;
  if (v['first-party']) fields.firstParty = true;
  if (v['third-party']) fields.firstParty = false;
  return fields;
}

/** Validates fields and checks that the APIs and scopes they name exist. */
/** The flag behind each field, so errors name what the admin typed. */
const FLAGS: Record<string, string> = {
  clientId: '--id', name: '--name', grantTypes: '--grant-type', redirectUris: '--redirect-uri',
  tokenEndpointAuthMethod: '--auth-method', resources: '--resource', scopes: '--scope',
  postLogoutRedirectUris: '--post-logout-redirect-uri', backchannelLogoutUri: '--backchannel-logout-uri', firstParty: '--first-party',
};

async function validate(db: Db, fields: Record<string, unknown>) {
  const parsed = clientInput.safeParse(fields);
  if (!parsed.success) throw new CliError(flagIssues(parsed.error, FLAGS));
  const client = parsed.data;
  const apis = new Map((await listResources(db)).map((r) => [r.identifier, r.scopes]));
  const problems = clientReferenceProblems(client, apis).map((p) =>
    p.field === 'resources'
      ? `--resource: ${p.message} (create it first with: gatehouse resources create)`
      : `--scope: ${p.message}`);
  if (problems.length) throw new CliError(problems.join('; '));
  return client;
}

function show(client: ClientRecord) {
  return describe({
    client_id: client.clientId,
    name: client.name,
    auth_method: client.tokenEndpointAuthMethod,
    grant_types: client.grantTypes,
    redirect_uris: client.redirectUris,
    resources: client.resources,
    scopes: client.scopes,
    first_party: client.firstParty,
    require_par: client.requirePar,
    registered_by: client.dynamic ? 'the app (dynamic registration)' : 'an admin',
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri ?? '-',
    has_secret: client.secretHash !== null,
    updated_at: client.updatedAt,
  });
}

async function mustFind(db: Db, clientId: string): Promise<ClientRecord> {
  const client = await findClient(db, clientId);
  if (!client) throw new CliError(`no client with id ${clientId}`);
  return client;
}

const secretNotice = (secret: string) =>
  `\nclient_secret  ${secret}\n(shown once: store it now; only its hash is kept)`;

export async function clientsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values, positionals } = parse(rest, { ...fieldOptions, id: { type: 'string' } });
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      if (values.name === undefined) throw usageError('--name is required');
      const out = output(Boolean(values.json));
      await withDatabase(async ({ prisma: db }) => {
        const client = await validate(db, { ...fieldsFromFlags(values), clientId: values.id });
        // hex: a generated id never starts with "-", which would read as a flag
        const clientId = client.clientId ?? randomBytes(12).toString('hex');
        if (await findClient(db, clientId)) throw new CliError(`client ${clientId} already exists`);
        const secret = client.tokenEndpointAuthMethod === 'none' ? undefined : generateSecret();
        const data: ClientData = { ...client, clientId, secretHash: secret ? await hashSecret(secret) : null };
        const created = await createClient(db, data);
        out.print({ ...publicClient(created), ...(secret ? { clientSecret: secret } : {}) }, () =>
          show(created) + (secret ? secretNotice(secret) : ''));
      });
      return;
    }
    case 'list': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      await withDatabase(async ({ prisma: db }) => {
        const clients = await listClients(db);
        output(Boolean(values.json)).print(clients.map(publicClient), () =>
          clients.length
            ? clients.map((c) => `${c.clientId}  ${c.name}  [${c.grantTypes.join(' ')}]`).join('\n')
            : 'no clients (create one with: gatehouse clients create --name NAME)');
      });
      return;
    }
    case 'show': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      const clientId = onePositional(positionals, 'client id');
      await withDatabase(async ({ prisma: db }) => {
        const client = await mustFind(db, clientId);
        output(Boolean(values.json)).print(publicClient(client), () => show(client));
      });
      return;
    }
    case 'update': {
      const { values, positionals } = parse(rest, { ...fieldOptions, 'third-party': { type: 'boolean' }, 'no-require-par': { type: 'boolean' } });
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      const clientId = onePositional(positionals, 'client id');
      if (values['first-party'] && values['third-party']) throw usageError('--first-party and --third-party exclude each other');
      const patch = fieldsFromFlags(values);
      if (!Object.keys(patch).length) throw usageError('nothing to update: give at least one option');
      await withDatabase(async ({ prisma: db }) => {
        const existing = await mustFind(db, clientId);
        const { secretHash, createdAt, updatedAt, dynamic, metadata, ...current } = existing;
        const client = await validate(db, { ...current, ...patch });
        if ((client.tokenEndpointAuthMethod === 'none') !== (existing.tokenEndpointAuthMethod === 'none')) {
          throw new CliError('a client cannot switch between public (none) and confidential: create a new client');
        }
        const updated = await updateClient(db, clientId, { ...client, clientId });
        // no longer first-party: grants made without asking are withdrawn, so people are asked
        const withdrawn = existing.firstParty && !updated.firstParty ? (await revokeConsents(db, { clientId })).length : 0;
        output(Boolean(values.json)).print({ ...publicClient(updated), ...(withdrawn ? { withdrawnGrants: withdrawn } : {}) }, () =>
          show(updated) + (withdrawn ? `\nwithdrew ${withdrawn} grant(s) given without consent` : ''));
      });
      return;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      const clientId = onePositional(positionals, 'client id');
      await withDatabase(async ({ prisma: db }) => {
        await mustFind(db, clientId);
        await deleteClient(db, clientId);
        output(Boolean(values.json)).print({ deleted: clientId }, () => `deleted client ${clientId}`);
      });
      return;
    }
    case 'rotate-secret': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(CLIENTS_HELP);
      const clientId = onePositional(positionals, 'client id');
      await withDatabase(async ({ prisma: db }) => {
        const client = await mustFind(db, clientId);
        if (client.tokenEndpointAuthMethod === 'none') throw new CliError(`client ${clientId} is public and has no secret`);
        const secret = generateSecret();
        await updateClient(db, clientId, { secretHash: await hashSecret(secret) });
        output(Boolean(values.json)).print({ clientId, clientSecret: secret }, () =>
          `rotated the secret of ${clientId}${secretNotice(secret)}`);
      });
      return;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(CLIENTS_HELP);
      return;
    default:
      throw usageError(`unknown command: clients ${sub} (see gatehouse clients --help)`);
  }
}
