import {
  clientsUsingResource, createResource, deleteResource, findResource, listResources, type ResourceRecord,
} from '../storage/resources.js';
import { resourceInput } from '../storage/validation.js';
import { CliError, describe, flagIssues, onePositional, output, parse, usageError, withDatabase } from './context.js';

export const RESOURCES_HELP = `Usage: gatehouse resources <command> [options]

An API (resource server) is named by its identifier, an absolute URI that becomes
the "aud" of its access tokens (RFC 8707 resource indicator).

Commands:
  create --identifier <uri>  register an API
  list                       list APIs
  show <identifier>          show one API
  delete <identifier>        delete an API no client uses

Options for create:
  --identifier <uri>   the audience, e.g. https://api.example.com (required)
  --name <text>        display name (default: the identifier)
  --scope <scope>      a scope the API defines (repeatable)
  --ttl <seconds>      access-token lifetime, 60 to 86400 (default 600)
  --format <format>    jwt (default: self-contained, checked against /jwks) |
                       opaque (stored: introspectable, revocable at once)
  --alg <alg>          JWT signing algorithm: ES256 (default) | RS256
  --introspector <client-id>
                       a client (the API's own credentials) that may introspect
                       tokens issued for this API (repeatable); any client may
                       always introspect its own tokens
  --json               machine-readable output
`;

function show(api: ResourceRecord) {
  return describe({
    identifier: api.identifier,
    name: api.name,
    scopes: api.scopes,
    ttl_seconds: api.accessTokenTtl,
    format: api.tokenFormat,
    alg: api.tokenFormat === 'jwt' ? api.signingAlg : '-',
    introspectors: api.introspectors,
    updated_at: api.updatedAt,
  });
}

export async function resourcesCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values, positionals } = parse(rest, {
        identifier: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        format: { type: 'string' },
        alg: { type: 'string' },
        introspector: { type: 'string', multiple: true },
      });
      if (values.help) return void process.stdout.write(RESOURCES_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      if (values.identifier === undefined) throw usageError('--identifier is required');
      if (values.ttl !== undefined && !/^\d+$/.test(String(values.ttl))) throw usageError('--ttl must be a whole number of seconds');
      const parsed = resourceInput.safeParse({
        identifier: values.identifier,
        name: values.name,
        scopes: values.scope,
        accessTokenTtl: values.ttl === undefined ? undefined : Number(values.ttl),
        tokenFormat: values.format,
        signingAlg: values.alg,
        introspectors: values.introspector,
      });
      if (!parsed.success) {
        throw new CliError(flagIssues(parsed.error, { identifier: '--identifier', name: '--name', scopes: '--scope', accessTokenTtl: '--ttl', tokenFormat: '--format', signingAlg: '--alg', introspectors: '--introspector' }));
      }
      await withDatabase(async ({ prisma: db }) => {
        const input = parsed.data;
        if (await findResource(db, input.identifier)) throw new CliError(`API ${input.identifier} already exists`);
        const api = await createResource(db, { ...input, name: input.name ?? input.identifier });
        output(Boolean(values.json)).print(api, () => show(api));
      });
      return;
    }
    case 'list': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(RESOURCES_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      await withDatabase(async ({ prisma: db }) => {
        const apis = await listResources(db);
        output(Boolean(values.json)).print(apis, () =>
          apis.length
            ? apis.map((a) => `${a.identifier}  ${a.name}  [${a.scopes.join(' ')}]  ${a.tokenFormat}`).join('\n')
            : 'no APIs (create one with: gatehouse resources create --identifier URI)');
      });
      return;
    }
    case 'show': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(RESOURCES_HELP);
      const identifier = onePositional(positionals, 'API identifier');
      await withDatabase(async ({ prisma: db }) => {
        const api = await findResource(db, identifier);
        if (!api) throw new CliError(`no API with identifier ${identifier}`);
        output(Boolean(values.json)).print(api, () => show(api));
      });
      return;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(RESOURCES_HELP);
      const identifier = onePositional(positionals, 'API identifier');
      await withDatabase(async ({ prisma: db }) => {
        if (!(await findResource(db, identifier))) throw new CliError(`no API with identifier ${identifier}`);
        const users = await clientsUsingResource(db, identifier);
        if (users.length) {
          throw new CliError(`API ${identifier} is still used by client(s) ${users.join(', ')}: update them first`);
        }
        await deleteResource(db, identifier);
        output(Boolean(values.json)).print({ deleted: identifier }, () => `deleted API ${identifier}`);
      });
      return;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(RESOURCES_HELP);
      return;
    default:
      throw usageError(`unknown command: resources ${sub} (see gatehouse resources --help)`);
  }
}
