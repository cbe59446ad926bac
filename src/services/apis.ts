import type { Db } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import { bumpChangeStamp } from '../storage/change-stamp.js';
import * as apis from '../storage/apis.js';
import type { ApiData, ApiRecord } from '../storage/apis.js';
import { clientsUsingApi, listClients } from '../storage/clients.js';
import { RowNotFoundError, UniqueViolationError } from '../storage/errors.js';
import { apiInput, resourceIdentifier, zodProblems, type ApiInput } from './validation.js';
import { assertThat, conflict, invalid, notFound, ServiceError } from './errors.js';
import { recordAudit } from './audit.js';

/**
 * The rules about registered APIs (resource servers), written once for every
 * door. An API's identifier is the `aud` of its tokens (RFC 8707).
 */

export type { ApiRecord } from '../storage/apis.js';

/**
 * The built-in management API: its identifier is the issuer's (checked by the
 * configuration, https in production), so a development issuer such as
 * http://gatehouse:3000 still gets one.
 */
const builtInApiInput = apiInput.extend({ identifier: resourceIdentifier });

function validateApi(fields: Record<string, unknown>, schema: typeof apiInput | typeof builtInApiInput = apiInput): ApiInput {
  const parsed = schema.safeParse(fields);
  if (!parsed.success) throw invalid(zodProblems(parsed.error));
  return parsed.data;
}

/** What is stored for validated input: the name defaults to the identifier. */
export function apiData(input: ApiInput): ApiData {
  return { ...input, name: input.name ?? input.identifier };
}

export async function findApi(db: Db, identifier: string): Promise<ApiRecord> {
  const api = await apis.findApi(db, identifier);
  assertThat(api, notFound(`no API with identifier ${identifier}`));
  return api;
}

export const listApis = (db: Db) => apis.listApis(db);

export function createApi(db: Db, fields: Record<string, unknown>): Promise<ApiRecord> {
  return insertNewApi(db, apiData(validateApi(fields)));
}

async function insertNewApi(db: Db, data: ApiData): Promise<ApiRecord> {
  const exists = conflict(`API ${data.identifier} already exists`);
  assertThat(!(await apis.findApi(db, data.identifier)), exists);
  try {
    return await transaction(db, async (tx) => {
      const api = await apis.insertApi(tx, data);
      await bumpChangeStamp(tx);
      await recordAudit(tx, {
        action: 'api.created',
        target: { type: 'api', id: api.identifier },
        details: { scopes: api.scopes, format: api.tokenFormat, introspectors: api.introspectors, allowRegisteredClients: api.allowRegisteredClients },
      });
      return api;
    });
  } catch (err) {
    if (err instanceof UniqueViolationError) throw exists;
    throw err;
  }
}

/** The fields an admin sets, as stored: what an update starts from. */
const editableFields = (api: ApiRecord) => ({
  name: api.name, scopes: api.scopes, accessTokenTtl: api.accessTokenTtl, tokenFormat: api.tokenFormat,
  signingAlg: api.signingAlg, introspectors: api.introspectors, allowRegisteredClients: api.allowRegisteredClients,
});

/**
 * Changes an API under the rules of createApi: fields left out keep their
 * values. Its identifier cannot change (it is the `aud` of tokens already
 * issued), and a scope a client still uses (through no other of its APIs)
 * cannot be dropped.
 */
export async function updateApi(db: Db, identifier: string, patch: Record<string, unknown>): Promise<ApiRecord> {
  const existing = await findApi(db, identifier);
  if (patch.identifier !== undefined && patch.identifier !== identifier) {
    throw invalid([{ path: ['identifier'], message: 'cannot be changed (it is the aud of tokens already issued): create a new API instead' }]);
  }
  // the stored identifier passed the rules of its day; only the other fields are judged again
  const data = apiData(validateApi({ ...editableFields(existing), ...patch, identifier }, builtInApiInput));
  const dropped = existing.scopes.filter((s) => !data.scopes.includes(s));
  if (dropped.length) {
    const [clients, all] = await Promise.all([listClients(db), apis.listApis(db)]);
    const scopesOf = new Map(all.map((a) => [a.identifier, a.scopes]));
    const problems = clients.flatMap((client) => {
      if (!client.resources.includes(identifier)) return [];
      const others = new Set(client.resources.filter((r) => r !== identifier).flatMap((r) => scopesOf.get(r) ?? []));
      const used = client.scopes.filter((s) => dropped.includes(s) && !others.has(s));
      return used.length ? [`${used.join(', ')} still used by client ${client.clientId}`] : [];
    });
    assertThat(problems.length === 0, conflict(`API ${identifier} cannot drop scope(s): ${problems.join('; ')}: update those clients first`));
  }
  const changed = (Object.keys(editableFields(existing)) as (keyof ReturnType<typeof editableFields>)[])
    .filter((k) => JSON.stringify(existing[k]) !== JSON.stringify(data[k]));
  try {
    return await transaction(db, async (tx) => {
      const { identifier: _, ...fields } = data;
      const api = await apis.updateApiRow(tx, identifier, fields);
      await bumpChangeStamp(tx);
      await recordAudit(tx, {
        action: 'api.updated',
        target: { type: 'api', id: identifier },
        details: { changed, scopes: api.scopes, format: api.tokenFormat, introspectors: api.introspectors, allowRegisteredClients: api.allowRegisteredClients },
      });
      return api;
    });
  } catch (err) {
    // a racing delete got there first
    if (err instanceof RowNotFoundError) throw notFound(`no API with identifier ${identifier}`);
    throw err;
  }
}

/** The built-in API of the management API: its identifier and scopes. */
export const adminApiOf = (issuer: string) => ({ identifier: `${issuer}/admin/v1`, name: 'Gatehouse management API', scopes: ['admin:read', 'admin:write'] });

/**
 * Makes sure the management API's own API exists (at every start; several
 * nodes may race, and one wins). An operator gives a client access with
 * `gatehouse clients create --resource <issuer>/admin/v1 --scope admin:read …`.
 */
export async function ensureAdminApi(db: Db, issuer: string): Promise<void> {
  const admin = adminApiOf(issuer);
  if (await apis.findApi(db, admin.identifier)) return;
  try {
    await insertNewApi(db, apiData(validateApi({ ...admin, accessTokenTtl: 600, tokenFormat: 'jwt' }, builtInApiInput)));
  } catch (err) {
    if (!(err instanceof ServiceError && err.code === 'conflict')) throw err;
  }
}

/** Deletes an API that no client uses any more. */
export async function deleteApi(db: Db, identifier: string): Promise<void> {
  await findApi(db, identifier);
  const users = await clientsUsingApi(db, identifier);
  assertThat(users.length === 0, conflict(`API ${identifier} is still used by client(s) ${users.join(', ')}: update them first`));
  try {
    await transaction(db, async (tx) => {
      await apis.deleteApiRow(tx, identifier);
      await bumpChangeStamp(tx);
      await recordAudit(tx, { action: 'api.deleted', target: { type: 'api', id: identifier } });
    });
  } catch (err) {
    // a racing delete got there first
    if (err instanceof RowNotFoundError) throw notFound(`no API with identifier ${identifier}`);
    throw err;
  }
}

/**
 * What a client may get for an API (RFC 8707): nothing unless the client lists
 * the API, or registered itself and the API accepts such apps
 * (`allowRegisteredClients`); otherwise the API's scopes, narrowed to the
 * client's allowed scopes when it has any. Unknown and forbidden APIs look the
 * same, so nothing can be probed.
 */
export function scopesForClient(api: ApiRecord | null, client: { resources: string[]; scopes: string[]; dynamic?: boolean }): string[] | null {
  if (!api) return null;
  if (!client.resources.includes(api.identifier) && !(client.dynamic && api.allowRegisteredClients)) return null;
  return client.scopes.length ? api.scopes.filter((s) => client.scopes.includes(s)) : api.scopes;
}

/**
 * RFC 7662 §4: a client learns about its own tokens, and an API's introspector
 * clients about tokens issued for that API; nobody about anyone else's.
 */
export async function mayIntrospect(clientId: string, token: { clientId?: string }, audiences: () => Promise<(ApiRecord | null)[]>): Promise<boolean> {
  return token.clientId === clientId || (await audiences()).some((api) => api?.introspectors.includes(clientId));
}
