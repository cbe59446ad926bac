import { randomBytes } from 'node:crypto';
import type { Db } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import { bumpChangeStamp } from '../storage/change-stamp.js';
import * as clients from '../storage/clients.js';
import type { ClientData, ClientRecord } from '../storage/clients.js';
import { listApis } from '../storage/apis.js';
import { deleteConsents } from '../storage/consents.js';
import { RowNotFoundError, UniqueViolationError } from '../storage/errors.js';
import type { ClientFields } from './validation.js';
import { SECRET_AUTH_METHODS } from '../common/protocol.js';
import { sameJson } from '../common/same-json.js';
import { recordAudit } from './audit.js';
import { assertThat, conflict, invalid, notFound, ServiceError, stale, type Problem } from './errors.js';

/*
 * The schemas (zod) and the secret hashing (argon2) are loaded by the first
 * write, not with this module: reading clients (`gatehouse clients list`)
 * needs neither, and they cost a CLI command about 0.1 s of start-up. In the
 * server both are loaded already.
 */
const validation = () => import('./validation.js');
const secrets = () => import('./client-secrets.js');

/**
 * The rules about clients, written once. The CLI, the seed and dynamic
 * registration (oidc/adapter.ts) come through here, and so will the
 * management API.
 */

export type { ClientRecord } from '../storage/clients.js';

/** What any door shows of a client: never the hash. */
export type PublicClient = Omit<ClientRecord, 'secretHash'> & { hasSecret: boolean };

export function publicClient({ secretHash, ...rest }: ClientRecord): PublicClient {
  return { ...rest, hasSecret: secretHash !== null };
}

/** The fields an admin (or an app, through registration) can set. */
export type EditableFields = Omit<ClientData, 'clientId' | 'secretHash' | 'dynamic' | 'metadata' | 'credentialsChangedAt'>;

function editableFields(client: ClientRecord): EditableFields {
  const { clientId, secretHash, dynamic, metadata, createdAt, updatedAt, credentialsChangedAt, ...fields } = client;
  return fields;
}

/** What a client proves itself with: nothing (public), a shared secret, or a private key. */
function credential(c: Pick<ClientData, 'tokenEndpointAuthMethod'>): 'none' | 'secret' | 'key' {
  if (c.tokenEndpointAuthMethod === 'none') return 'none';
  return SECRET_AUTH_METHODS.includes(c.tokenEndpointAuthMethod) ? 'secret' : 'key';
}

/** Whether the client authenticates with a secret (and so has one, hashed). */
export const usesSecret = (c: Pick<ClientData, 'tokenEndpointAuthMethod'>) => credential(c) === 'secret';

/**
 * Rules about changing a stored client into `next`. A client cannot switch
 * between kinds of credential (none, a secret, a private key): its tokens,
 * credentials and the apps built on it assume one.
 */
export function changeProblems(existing: ClientRecord | null, next: Pick<ClientData, 'tokenEndpointAuthMethod'>): Problem[] {
  if (!existing || credential(existing) === credential(next)) return [];
  return [{ path: ['tokenEndpointAuthMethod'], message: 'a client cannot switch between public (none), secret and private_key_jwt authentication: create a new client' }];
}

/**
 * A client that stops being first-party loses the grants it was given without
 * asking, so people are asked for consent again.
 */
export function withdrawsConsents(existing: ClientRecord | null, next: Pick<ClientData, 'firstParty'>): boolean {
  return Boolean(existing?.firstParty && !next.firstParty);
}

/** Scopes of every API, for reference checks. */
export async function apiScopes(db: Db): Promise<Map<string, string[]>> {
  return new Map((await listApis(db)).map((a) => [a.identifier, a.scopes]));
}

/** Validates client fields: the schema, the cross-field rules, and that the APIs and scopes it names exist. */
export async function validateClient(db: Db, fields: Record<string, unknown>): Promise<ClientFields> {
  const { clientInput, clientReferenceProblems, zodProblems } = await validation();
  const parsed = clientInput.safeParse(fields);
  if (!parsed.success) throw invalid(zodProblems(parsed.error));
  const problems = clientReferenceProblems(parsed.data, await apiScopes(db));
  assertThat(problems.length === 0, invalid(problems));
  return parsed.data;
}

export async function findClient(db: Db, clientId: string): Promise<ClientRecord> {
  const client = await clients.findClient(db, clientId);
  assertThat(client, notFound(`no client with id ${clientId}`));
  return client;
}

export const listClients = (db: Db) => clients.listClients(db);

/** A page of clients (by id), at most `limit` (1-500); `next` is the cursor of the page after, if any. */
export async function listClientsPage(db: Db, page: { after?: string; limit?: number; dynamic?: boolean }): Promise<{ items: ClientRecord[]; next: string | null }> {
  const limit = page.limit ?? 50;
  assertThat(Number.isInteger(limit) && limit >= 1 && limit <= 500, invalid([{ path: ['limit'], message: 'must be a whole number from 1 to 500' }]));
  const items = await clients.listClientsPage(db, { after: page.after, limit: limit + 1, dynamic: page.dynamic });
  return { items: items.slice(0, limit), next: items.length > limit ? items[limit - 1].clientId : null };
}

/** A new client id: hex, so a generated id never starts with "-" (which would read as a flag). */
export const newClientId = () => randomBytes(12).toString('hex');

/** Creates a client; a confidential one gets a generated secret, returned once. */
export async function createClient(db: Db, fields: Record<string, unknown>): Promise<{ client: ClientRecord; secret?: string }> {
  const input = await validateClient(db, fields);
  const clientId = input.clientId ?? newClientId();
  assertThat(!(await clients.findClient(db, clientId)), conflict(`client ${clientId} already exists`));
  const { generateSecret, hashSecret } = await secrets();
  const secret = usesSecret(input) ? generateSecret() : undefined;
  const data: ClientData = { ...input, clientId, secretHash: secret ? await hashSecret(secret) : null };
  try {
    const client = await transaction(db, async (tx) => {
      const created = await clients.insertClient(tx, data);
      await bumpChangeStamp(tx);
      await recordAudit(tx, { action: 'client.created', target: { type: 'client', id: clientId }, details: auditDetails(created) });
      return created;
    });
    return { client, ...(secret ? { secret } : {}) };
  } catch (err) {
    // another create of the same id won the race
    if (err instanceof UniqueViolationError) throw conflict(`client ${clientId} already exists`);
    throw err;
  }
}

/**
 * Applies a change to a stored client (fields not given stay as they are),
 * under every rule; a client that stops being first-party loses its consents,
 * in the same transaction. Returns how many consents were withdrawn.
 */
export async function updateClient(
  db: Db, clientId: string, patch: Record<string, unknown>, options: { ifVersion?: Date } = {},
): Promise<{ client: ClientRecord; withdrawnConsents: number }> {
  const existing = await findClient(db, clientId);
  if (options.ifVersion) assertThat(existing.updatedAt.getTime() === options.ifVersion.getTime(), stale(`client ${clientId}`));
  const input = await validateClient(db, { ...editableFields(existing), ...patch });
  const problems = changeProblems(existing, input);
  assertThat(problems.length === 0, invalid(problems));
  try {
    return await saveClientChange(db, existing, { ...input, clientId }, options.ifVersion);
  } catch (err) {
    // another change landed between the read and the write
    if (err instanceof RowNotFoundError && options.ifVersion) throw stale(`client ${clientId}`);
    throw err;
  }
}

/** Writes a validated change of `existing` together with what the rules make follow from it. */
async function saveClientChange(
  db: Db, existing: ClientRecord, data: Partial<ClientData> & EditableFields, ifVersion?: Date,
): Promise<{ client: ClientRecord; withdrawnConsents: number }> {
  return transaction(db, async (tx) => {
    const client = await clients.updateClientRow(tx, existing.clientId, { ...data, ...credentialsStamp(existing, data) }, ifVersion);
    const withdrawn = withdrawsConsents(existing, data) ? await deleteConsents(tx, { clientId: existing.clientId }) : [];
    await bumpChangeStamp(tx);
    await recordAudit(tx, {
      action: 'client.updated',
      target: { type: 'client', id: existing.clientId },
      details: { changed: changedFields(existing, client), ...(withdrawn.length ? { withdrawnConsents: withdrawn.length } : {}) },
    });
    return { client, withdrawnConsents: withdrawn.length };
  });
}

/** What the trail says about a client: its settings, never its secret or keys. */
function auditDetails(c: ClientRecord): Record<string, unknown> {
  return {
    name: c.name, authMethod: c.tokenEndpointAuthMethod, grantTypes: c.grantTypes, resources: c.resources,
    firstParty: c.firstParty, profile: c.profile, dynamic: c.dynamic,
  };
}

/** The names of the fields a change altered (values are in the client itself). */
function changedFields(before: ClientRecord, after: ClientRecord): string[] {
  const names = Object.keys(editableFields(after)) as (keyof EditableFields)[];
  return names.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}

/** What authenticates a client: a change of any ends its management tokens issued before (admin/access.ts). */
const CREDENTIAL_FIELDS = ['secretHash', 'jwks', 'jwksUri', 'tokenEndpointAuthMethod'] as const;

/**
 * The stamp a change of `existing` carries: `credentialsChangedAt` when it
 * changes how the client authenticates (a rotated secret, new keys), so that
 * tokens the client got with the old credentials stop working where Gatehouse
 * checks live state (the management API).
 */
export function credentialsStamp(existing: ClientRecord | null | undefined, data: Partial<ClientData>, at = new Date()): { credentialsChangedAt?: Date } {
  if (!existing) return {};
  const changed = CREDENTIAL_FIELDS.some((k) => k in data && !sameJson(data[k] ?? null, existing[k] ?? null));
  return changed ? { credentialsChangedAt: at } : {};
}

/** Replaces a confidential client's secret; the new one is returned once. */
export async function rotateClientSecret(db: Db, clientId: string): Promise<string> {
  const client = await findClient(db, clientId);
  assertThat(usesSecret(client), new ServiceError('invalid', `client ${clientId} authenticates with ${client.tokenEndpointAuthMethod} and has no secret`));
  const { generateSecret, hashSecret } = await secrets();
  const secret = generateSecret();
  const secretHash = await hashSecret(secret);
  await transaction(db, async (tx) => {
    await clients.updateClientRow(tx, clientId, { secretHash, ...credentialsStamp(client, { secretHash }) });
    await bumpChangeStamp(tx);
    await recordAudit(tx, { action: 'client.secret_rotated', target: { type: 'client', id: clientId } });
  });
  return secret;
}

/** Deletes a client, its remembered consents and everything stored under their grants. */
export async function deleteClient(db: Db, clientId: string, only?: { dynamic: boolean }, options: { ifVersion?: Date } = {}): Promise<void> {
  const client = await findClient(db, clientId);
  if (only) assertThat(client.dynamic === only.dynamic, conflict('this client is managed by an administrator'));
  if (options.ifVersion) assertThat(client.updatedAt.getTime() === options.ifVersion.getTime(), stale(`client ${clientId}`));
  try {
    await transaction(db, async (tx) => {
      const withdrawn = await deleteConsents(tx, { clientId });
      await clients.deleteClientRow(tx, clientId, options.ifVersion);
      await bumpChangeStamp(tx);
      await recordAudit(tx, { action: 'client.deleted', target: { type: 'client', id: clientId }, details: { dynamic: client.dynamic, withdrawnConsents: withdrawn.length } });
    });
  } catch (err) {
    // a racing delete (or, with ifVersion, a racing change) got there first
    if (err instanceof RowNotFoundError) throw options.ifVersion ? stale(`client ${clientId}`) : notFound(`no client with id ${clientId}`);
    throw err;
  }
}

/**
 * Stores a client an app registered itself (RFC 7591) or changed (RFC 7592).
 * The same rules as an admin's, plus: such a client is third-party and gets no
 * API until an admin grants it (what an admin granted stays), and an app can
 * never touch a client an admin made.
 */
export async function saveRegisteredClient(
  db: Db,
  clientId: string,
  fields: Omit<Record<string, unknown>, 'firstParty' | 'resources' | 'scopes'>,
  secretHash: string | null,
  metadata: Record<string, unknown>,
): Promise<ClientRecord> {
  const existing = await clients.findClient(db, clientId);
  assertThat(!existing || existing.dynamic, conflict('this client is managed by an administrator'));
  const granted = { firstParty: existing?.firstParty ?? false, resources: existing?.resources ?? [], scopes: existing?.scopes ?? [] };
  const input = await validateClient(db, { ...fields, ...granted, clientId });
  const problems = changeProblems(existing, input);
  assertThat(problems.length === 0, invalid(problems));
  const data: ClientData = { ...input, clientId, secretHash: usesSecret(input) ? secretHash : null, dynamic: true, metadata };
  if (existing) return (await saveClientChange(db, existing, data)).client;
  return transaction(db, async (tx) => {
    const created = await clients.insertClient(tx, data);
    await bumpChangeStamp(tx);
    await recordAudit(tx, { action: 'client.registered', target: { type: 'client', id: clientId }, details: auditDetails(created) });
    return created;
  });
}

/**
 * Whether an admin registered a client with this back-channel logout URI: the
 * only outgoing requests an operator may exempt from SSRF protection (an app
 * that registered itself never is).
 */
export function isAdminBackchannelLogoutUri(db: Db, uri: string): Promise<boolean> {
  return clients.isAdminBackchannelLogoutUri(db, uri);
}

/**
 * Whether an admin registered a client that publishes its keys at this
 * jwks_uri: the other outgoing request an operator may exempt from SSRF
 * protection (an app that registered itself never is).
 */
export async function isAdminOutgoingUri(db: Db, uri: string): Promise<boolean> {
  return (await clients.isAdminBackchannelLogoutUri(db, uri)) || clients.isAdminJwksUri(db, uri);
}
