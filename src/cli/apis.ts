import type { ApiRecord } from '../services/apis.js';
import { SIGNING_ALGS } from '../common/protocol.js';
import { describe, usageError, withDatabase } from './context.js';
import type { Command, Flags, Values } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/apis.js');

function show(api: ApiRecord) {
  return describe({
    identifier: api.identifier,
    name: api.name,
    scopes: api.scopes,
    ttl_seconds: api.accessTokenTtl,
    format: api.tokenFormat,
    alg: api.tokenFormat === 'jwt' ? api.signingAlg : '-',
    introspectors: api.introspectors,
    registered_clients: api.allowRegisteredClients ? 'allowed (apps that registered themselves may get tokens)' : 'only those an admin lists',
    updated_at: api.updatedAt,
  });
}

/** The flags of create and update (update takes the identifier as its argument). */
const fieldFlags: Flags = {
  name: { type: 'string', arg: '<text>', help: 'display name (default: the identifier)' },
  scope: { type: 'string', multiple: true, arg: '<scope>', help: 'a scope the API defines' },
  ttl: { type: 'string', arg: '<seconds>', help: 'access-token lifetime, 60 to 86400 (default 600)' },
  format: { type: 'string', arg: '<format>', help: 'jwt (default: self-contained, checked against /jwks) | opaque (stored: introspectable, revocable at once)' },
  alg: { type: 'string', arg: '<alg>', help: `JWT signing algorithm: ${SIGNING_ALGS.join(' | ')} (default ${SIGNING_ALGS[0]})` },
  introspector: { type: 'string', multiple: true, arg: '<client-id>', help: 'a client (the API\'s own credentials) that may introspect tokens issued for this API; any client may always introspect its own tokens' },
  'allow-registered-clients': { type: 'boolean', help: 'apps that registered themselves (RFC 7591) may get tokens for this API without an admin listing them (e.g. an MCP server)' },
};

/** A repeatable flag's values; `--flag ''` alone clears the list. */
const list = (v: Values[string]) => (Array.isArray(v) ? v.filter((x) => x !== '') : v);

/** Flag values to API fields; only the flags given. */
function fieldsFromFlags(v: Values): Record<string, unknown> {
  if (v.ttl !== undefined && !/^\d+$/.test(String(v.ttl))) throw usageError('--ttl must be a whole number of seconds');
  const fields: Record<string, unknown> = {};
  if (v.name !== undefined) fields.name = v.name;
  if (v.scope !== undefined) fields.scopes = list(v.scope);
  if (v.ttl !== undefined) fields.accessTokenTtl = Number(v.ttl);
  if (v.format !== undefined) fields.tokenFormat = v.format;
  if (v.alg !== undefined) fields.signingAlg = v.alg;
  if (v.introspector !== undefined) fields.introspectors = list(v.introspector);
  if (v['allow-registered-clients']) fields.allowRegisteredClients = true;
  return fields;
}

export const apisCommand: Command = {
  // the documented name; `apis` says the same in the word the help uses
  name: 'resources',
  aliases: ['apis'],
  summary: 'manage APIs (resource servers)',
  intro: `An API (resource server) is named by its identifier, an absolute URI that becomes
the "aud" of its access tokens (RFC 8707 resource indicator).`,
  fieldFlags: {
    identifier: '--identifier', name: '--name', scopes: '--scope', accessTokenTtl: '--ttl',
    tokenFormat: '--format', signingAlg: '--alg', introspectors: '--introspector',
    allowRegisteredClients: '--allow-registered-clients',
  },
  subcommands: [
    {
      usage: 'create',
      summary: 'register an API',
      flags: {
        identifier: { type: 'string', arg: '<uri>', help: 'the audience, e.g. https://api.example.com (required)' },
        ...fieldFlags,
      },
      async run({ values, out }) {
        if (values.identifier === undefined) throw usageError('--identifier is required');
        const fields = fieldsFromFlags(values);
        const { createApi } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const api = await createApi(db, { identifier: values.identifier, ...fields, allowRegisteredClients: values['allow-registered-clients'] === true });
          out.print(api, () => show(api));
        });
      },
    },
    {
      usage: 'update <identifier>',
      summary: 'change an API; options left out keep their values',
      argName: 'API identifier',
      notes: "List options (--scope, --introspector) replace the whole list; give one empty value (e.g. --introspector '') to clear it. A scope a client still uses cannot be dropped.",
      flags: {
        ...fieldFlags,
        'no-allow-registered-clients': { type: 'boolean', help: 'only clients an admin lists may get tokens for this API again' },
      },
      async run({ values, arg, out }) {
        if (values['allow-registered-clients'] && values['no-allow-registered-clients']) {
          throw usageError('--allow-registered-clients and --no-allow-registered-clients exclude each other');
        }
        const patch = fieldsFromFlags(values);
        if (values['no-allow-registered-clients']) patch.allowRegisteredClients = false;
        if (!Object.keys(patch).length) throw usageError('nothing to update: give at least one option');
        const { updateApi } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const api = await updateApi(db, arg, patch);
          out.print(api, () => show(api));
        });
      },
    },
    {
      usage: 'list',
      summary: 'list APIs',
      async run({ out }) {
        const { listApis } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const apis = await listApis(db);
          out.print(apis, () =>
            apis.length
              ? apis.map((a) => `${a.identifier}  ${a.name}  [${a.scopes.join(' ')}]  ${a.tokenFormat}`).join('\n')
              : 'no APIs (create one with: gatehouse resources create --identifier URI)');
        });
      },
    },
    {
      usage: 'show <identifier>',
      summary: 'show one API',
      argName: 'API identifier',
      async run({ arg, out }) {
        const { findApi } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const api = await findApi(db, arg);
          out.print(api, () => show(api));
        });
      },
    },
    {
      usage: 'delete <identifier>',
      summary: 'delete an API no client uses',
      argName: 'API identifier',
      async run({ arg, out }) {
        const { deleteApi } = await service();
        await withDatabase(async ({ prisma: db }) => {
          await deleteApi(db, arg);
          out.print({ deleted: arg }, () => `deleted API ${arg}`);
        });
      },
    },
  ],
};
