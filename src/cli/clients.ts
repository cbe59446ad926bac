import type { ClientRecord } from '../services/clients.js';
import { readFileSync } from 'node:fs';
import { AUTH_METHODS, CLIENT_PROFILES, GRANT_TYPES, PKCE_POLICIES } from '../common/protocol.js';
import { describe, usageError, withDatabase } from './context.js';
import type { Command, Flags, Values } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/clients.js');

const fieldFlags: Flags = {
  name: { type: 'string', arg: '<text>', help: 'display name (required for create)' },
  'grant-type': { type: 'string', multiple: true, arg: '<type>', help: `${GRANT_TYPES.join(' | ')}; default client_credentials` },
  'redirect-uri': { type: 'string', multiple: true, arg: '<uri>', help: 'https, or http on localhost; no fragment' },
  'auth-method': { type: 'string', arg: '<method>', help: `${AUTH_METHODS.join(' | ')}; default client_secret_basic; none is a public client` },
  'jwks-file': { type: 'string', arg: '<file>', help: "private_key_jwt: a JSON file with the client's public keys (a JWK Set)" },
  'jwks-uri': { type: 'string', arg: '<uri>', help: 'private_key_jwt: where the client publishes its public keys (https)' },
  profile: { type: 'string', arg: '<profile>', help: `${CLIENT_PROFILES.join(' | ')}; fapi2: FAPI 2.0 Security Profile (PAR, private_key_jwt, DPoP)` },
  resource: { type: 'string', multiple: true, arg: '<uri>', help: 'an API this client may get tokens for' },
  scope: { type: 'string', multiple: true, arg: '<scope>', help: 'limit the client to these API scopes (default: all)' },
  'post-logout-redirect-uri': { type: 'string', multiple: true, arg: '<uri>', help: 'where RP-initiated logout may return to' },
  'backchannel-logout-uri': { type: 'string', arg: '<uri>', help: 'OpenID Connect back-channel logout endpoint' },
  'require-par': { type: 'boolean', help: 'only accept pushed authorization requests (RFC 9126)' },
  pkce: { type: 'string', arg: '<policy>', help: `${PKCE_POLICIES.join(' | ')}; default required; optional only for a confidential client outside fapi2` },
  'first-party': { type: 'boolean', help: 'skip consent for this client' },
};

/** A repeatable flag's values; `--flag ''` alone clears the list. */
const list = (v: Values[string]) => (Array.isArray(v) ? v.filter((x) => x !== '') : v);

/** The JWK Set in a --jwks-file, parsed; the rules about its keys are the service's. */
function readJwksFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw usageError(`--jwks-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw usageError(`--jwks-file: ${path} is not JSON (expected a JWK Set: {"keys": [...]})`);
  }
}

/** Flag values to client fields; only the flags given. */
function fieldsFromFlags(v: Values): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (v.name !== undefined) fields.name = v.name;
  if (v['grant-type'] !== undefined) fields.grantTypes = list(v['grant-type']);
  if (v['redirect-uri'] !== undefined) fields.redirectUris = list(v['redirect-uri']);
  if (v['auth-method'] !== undefined) fields.tokenEndpointAuthMethod = v['auth-method'];
  if (v['jwks-file'] !== undefined) fields.jwks = v['jwks-file'] === '' ? null : readJwksFile(String(v['jwks-file']));
  if (v['jwks-uri'] !== undefined) fields.jwksUri = v['jwks-uri'] || null;
  if (v.profile !== undefined) fields.profile = v.profile;
  if (v.resource !== undefined) fields.resources = list(v.resource);
  if (v.scope !== undefined) fields.scopes = list(v.scope);
  if (v['post-logout-redirect-uri'] !== undefined) fields.postLogoutRedirectUris = list(v['post-logout-redirect-uri']);
  if (v['backchannel-logout-uri'] !== undefined) fields.backchannelLogoutUri = v['backchannel-logout-uri'] || null;
  if (v.pkce !== undefined) fields.pkce = v.pkce;
  if (v['require-par']) fields.requirePar = true;
  if (v['no-require-par']) fields.requirePar = false;
  if (v['first-party']) fields.firstParty = true;
  if (v['third-party']) fields.firstParty = false;
  return fields;
}

function show(client: ClientRecord) {
  return describe({
    client_id: client.clientId,
    name: client.name,
    auth_method: client.tokenEndpointAuthMethod,
    ...(client.jwks ? { jwks: `${client.jwks.keys.length} key(s): ${client.jwks.keys.map((k) => k.kid ?? k.kty).join(' ')}` } : {}),
    ...(client.jwksUri ? { jwks_uri: client.jwksUri } : {}),
    profile: client.profile,
    grant_types: client.grantTypes,
    redirect_uris: client.redirectUris,
    resources: client.resources,
    scopes: client.scopes,
    first_party: client.firstParty,
    require_par: client.requirePar,
    pkce: client.pkce,
    registered_by: client.dynamic ? 'the app (dynamic registration)' : 'an admin',
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri ?? '-',
    has_secret: client.secretHash !== null,
    updated_at: client.updatedAt,
  });
}

const secretNotice = (secret: string) =>
  `\nclient_secret  ${secret}\n(shown once: store it now; only its hash is kept)`;

export const clientsCommand: Command = {
  name: 'clients',
  summary: 'manage clients (apps and services)',
  fieldFlags: {
    clientId: '--id', name: '--name', grantTypes: '--grant-type', redirectUris: '--redirect-uri',
    tokenEndpointAuthMethod: '--auth-method', jwks: '--jwks-file', jwksUri: '--jwks-uri', profile: '--profile', resources: '--resource', scopes: '--scope',
    postLogoutRedirectUris: '--post-logout-redirect-uri', backchannelLogoutUri: '--backchannel-logout-uri', firstParty: '--first-party', pkce: '--pkce',
  },
  subcommands: [
    {
      usage: 'create',
      summary: "register a client; a confidential client's secret is shown once",
      flags: { ...fieldFlags, id: { type: 'string', arg: '<client-id>', help: 'client id (default: random)' } },
      async run({ values, out }) {
        if (values.name === undefined) throw usageError('--name is required');
        const { createClient, publicClient } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const { client, secret } = await createClient(db, { ...fieldsFromFlags(values), clientId: values.id });
          out.print({ ...publicClient(client), ...(secret ? { clientSecret: secret } : {}) }, () =>
            show(client) + (secret ? secretNotice(secret) : ''));
        });
      },
    },
    {
      usage: 'list',
      summary: 'list clients',
      async run({ out }) {
        const { listClients, publicClient } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const clients = await listClients(db);
          out.print(clients.map(publicClient), () =>
            clients.length
              ? clients.map((c) => `${c.clientId}  ${c.name}  [${c.grantTypes.join(' ')}]`).join('\n')
              : 'no clients (create one with: gatehouse clients create --name NAME)');
        });
      },
    },
    {
      usage: 'show <client-id>',
      summary: 'show one client',
      async run({ arg, out }) {
        const { findClient, publicClient } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const client = await findClient(db, arg);
          out.print(publicClient(client), () => show(client));
        });
      },
    },
    {
      usage: 'update <client-id>',
      summary: 'change a client; a client made third-party loses the consents it was given without asking',
      notes: "List options replace the whole list on update; give one empty value (e.g. --redirect-uri '') to clear it.",
      flags: {
        ...fieldFlags,
        'third-party': { type: 'boolean', help: 'ask for consent again' },
        'no-require-par': { type: 'boolean', help: 'accept plain authorization requests again' },
      },
      async run({ values, arg, out }) {
        if (values['first-party'] && values['third-party']) throw usageError('--first-party and --third-party exclude each other');
        const patch = fieldsFromFlags(values);
        if (!Object.keys(patch).length) throw usageError('nothing to update: give at least one option');
        const { updateClient, publicClient } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const { client, withdrawnConsents: withdrawn } = await updateClient(db, arg, patch);
          out.print({ ...publicClient(client), ...(withdrawn ? { withdrawnGrants: withdrawn } : {}) }, () =>
            show(client) + (withdrawn ? `\nwithdrew ${withdrawn} grant(s) given without consent` : ''));
        });
      },
    },
    {
      usage: 'delete <client-id>',
      summary: 'delete a client, its consents and their tokens',
      async run({ arg, out }) {
        const { deleteClient } = await service();
        await withDatabase(async ({ prisma: db }) => {
          await deleteClient(db, arg);
          out.print({ deleted: arg }, () => `deleted client ${arg}`);
        });
      },
    },
    {
      usage: 'rotate-secret <client-id>',
      summary: 'replace the secret; the old one stops working within a second',
      async run({ arg, out }) {
        const { rotateClientSecret } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const secret = await rotateClientSecret(db, arg);
          out.print({ clientId: arg, clientSecret: secret }, () => `rotated the secret of ${arg}${secretNotice(secret)}`);
        });
      },
    },
  ],
};
