import type { Db } from './database.js';
import type { AuthMethod, ClientProfile, GrantType, PkcePolicy } from '../common/protocol.js';
import { objectEnumValues } from '@prisma/client/runtime/client.mjs';
import { assertStorable, isStorable } from './text.js';

/** SQL NULL in a JSON column (a plain null there would be the JSON value null) */
const DB_NULL = objectEnumValues.instances.DbNull;

/** Registered apps, as the `Client` table holds them. */

type Clients = Pick<Db, 'client'>;

/** What is written for a client. */
export interface ClientData {
  clientId: string;
  name: string;
  /** argon2id hash, never the secret; null for public clients */
  secretHash: string | null;
  tokenEndpointAuthMethod: AuthMethod;
  /** private_key_jwt: the client's public JWK Set, or where to fetch it (one of the two) */
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUri: string | null;
  /** default, or fapi2 (the FAPI 2.0 Security Profile) */
  profile: ClientProfile;
  grantTypes: GrantType[];
  redirectUris: string[];
  /** API scopes this client may be granted; empty means every scope of its APIs */
  scopes: string[];
  /** identifiers of the APIs (RFC 8707 resource indicators) this client may get tokens for */
  resources: string[];
  firstParty: boolean;
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  requirePar: boolean;
  /** PKCE on authorization requests: required, or optional (confidential clients only) */
  pkce: PkcePolicy;
  /** registered by the app itself (RFC 7591) */
  dynamic?: boolean;
  /** other registered metadata, as given (JSON) */
  metadata?: Record<string, unknown>;
  /** the last change of how the client authenticates (secret, keys, method) */
  credentialsChangedAt?: Date | null;
}

export interface ClientRecord extends Required<Omit<ClientData, 'metadata'>> {
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

type Row = NonNullable<Awaited<ReturnType<Db['client']['findUnique']>>>;

function toRecord(row: Row): ClientRecord {
  return {
    ...row,
    tokenEndpointAuthMethod: row.tokenEndpointAuthMethod as AuthMethod,
    jwks: row.jwks as ClientRecord['jwks'],
    profile: row.profile as ClientProfile,
    pkce: row.pkce as PkcePolicy,
    grantTypes: row.grantTypes as GrantType[],
    redirectUris: row.redirectUris as string[],
    scopes: row.scopes as string[],
    resources: row.resources as string[],
    postLogoutRedirectUris: row.postLogoutRedirectUris as string[],
    metadata: row.metadata as Record<string, unknown>,
  };
}

export async function findClient(db: Clients, clientId: string): Promise<ClientRecord | null> {
  // text that cannot be stored is in no row
  if (!isStorable(clientId)) return null;
  const row = await db.client.findUnique({ where: { clientId } });
  return row ? toRecord(row) : null;
}

export async function listClients(db: Clients): Promise<ClientRecord[]> {
  return (await db.client.findMany({ orderBy: { clientId: 'asc' } })).map(toRecord);
}

/** Prisma writes a JSON null column as `Prisma.DbNull`; `null` means "no key set" here. */
function row<T extends Partial<ClientData>>(data: T) {
  const { jwks, ...rest } = data;
  return jwks === undefined ? rest : { ...rest, jwks: jwks === null ? DB_NULL : jwks };
}

export async function insertClient(db: Clients, data: ClientData): Promise<ClientRecord> {
  assertStorable(data);
  return toRecord(await db.client.create({ data: row(data) as never }));
}

/** With `ifUpdatedAt`, only if the row is still that version (else RowNotFoundError). */
export async function updateClientRow(db: Clients, clientId: string, data: Partial<ClientData>, ifUpdatedAt?: Date): Promise<ClientRecord> {
  assertStorable(data);
  return toRecord(await db.client.update({ where: { clientId, ...(ifUpdatedAt ? { updatedAt: ifUpdatedAt } : {}) }, data: row(data) as never }));
}

/** One page of clients by id, after `after`; `dynamic` filters who registered them. */
export async function listClientsPage(db: Clients, page: { after?: string; limit: number; dynamic?: boolean }): Promise<ClientRecord[]> {
  if (page.after !== undefined && !isStorable(page.after)) return [];
  const rows = await db.client.findMany({
    where: { ...(page.after !== undefined ? { clientId: { gt: page.after } } : {}), ...(page.dynamic !== undefined ? { dynamic: page.dynamic } : {}) },
    orderBy: { clientId: 'asc' },
    take: page.limit,
  });
  return rows.map(toRecord);
}

/** Many new clients in one statement. */
export async function insertClients(db: Clients, data: ClientData[]): Promise<void> {
  assertStorable(data);
  await db.client.createMany({ data: data.map(row) as never });
}

export async function upsertClient(db: Clients, data: ClientData): Promise<void> {
  assertStorable(data);
  const { clientId, ...rest } = data;
  await db.client.upsert({ where: { clientId }, create: row(data) as never, update: row(rest) as never });
}

export async function deleteClientRow(db: Clients, clientId: string, ifUpdatedAt?: Date): Promise<void> {
  await db.client.delete({ where: { clientId, ...(ifUpdatedAt ? { updatedAt: ifUpdatedAt } : {}) } });
}

/** Clients that list this API. */
export async function clientsUsingApi(db: Clients, identifier: string): Promise<string[]> {
  const clients = await db.client.findMany({ select: { clientId: true, resources: true } });
  return clients.filter((c) => (c.resources as string[]).includes(identifier)).map((c) => c.clientId);
}

/**
 * Whether an admin registered a client with this back-channel logout URI (an
 * app that registered itself never counts).
 */
export async function isAdminBackchannelLogoutUri(db: Clients, uri: string): Promise<boolean> {
  return (await db.client.count({ where: { backchannelLogoutUri: uri, dynamic: false } })) > 0;
}

/** Whether an admin registered a client whose keys are at this jwks_uri (an app that registered itself never counts). */
export async function isAdminJwksUri(db: Clients, uri: string): Promise<boolean> {
  return (await db.client.count({ where: { jwksUri: uri, dynamic: false } })) > 0;
}
