import type { Db } from './database.js';
import type { SigningAlg, TokenFormat } from '../common/protocol.js';
import { isStorable } from './text.js';

/** Registered APIs (resource servers), as the `ResourceServer` table holds them. */

type Apis = Pick<Db, 'resourceServer'>;

export interface ApiData {
  /** the audience URI (RFC 8707 resource indicator) */
  identifier: string;
  name: string;
  scopes: string[];
  /** seconds */
  accessTokenTtl: number;
  tokenFormat: TokenFormat;
  signingAlg: SigningAlg;
  /** clients (the API's own credentials) that may introspect its tokens */
  introspectors: string[];
  /** apps that registered themselves (RFC 7591) may get tokens for it without an admin's grant */
  allowRegisteredClients: boolean;
}

export interface ApiRecord extends ApiData {
  createdAt: Date;
  updatedAt: Date;
}

type Row = NonNullable<Awaited<ReturnType<Db['resourceServer']['findUnique']>>>;

function toRecord(row: Row): ApiRecord {
  return {
    ...row,
    scopes: row.scopes as string[],
    tokenFormat: row.tokenFormat as TokenFormat,
    signingAlg: row.signingAlg as SigningAlg,
    introspectors: row.introspectors as string[],
  };
}

export async function findApi(db: Apis, identifier: string): Promise<ApiRecord | null> {
  if (!isStorable(identifier)) return null;
  const row = await db.resourceServer.findUnique({ where: { identifier } });
  return row ? toRecord(row) : null;
}

export async function listApis(db: Apis): Promise<ApiRecord[]> {
  return (await db.resourceServer.findMany({ orderBy: { identifier: 'asc' } })).map(toRecord);
}

export async function insertApi(db: Apis, data: ApiData): Promise<ApiRecord> {
  return toRecord(await db.resourceServer.create({ data }));
}

/** Changes a stored API; RowNotFoundError (through translated errors) when it is gone. */
export async function updateApiRow(db: Apis, identifier: string, data: Omit<ApiData, 'identifier'>): Promise<ApiRecord> {
  return toRecord(await db.resourceServer.update({ where: { identifier }, data }));
}

export async function upsertApi(db: Apis, data: ApiData): Promise<void> {
  const { identifier, ...rest } = data;
  await db.resourceServer.upsert({ where: { identifier }, create: data, update: rest });
}

export async function deleteApiRow(db: Apis, identifier: string): Promise<void> {
  await db.resourceServer.delete({ where: { identifier } });
}
