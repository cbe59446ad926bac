import type { Db } from './database.js';
import type { ResourceInput } from './validation.js';
import { bumpChangeStamp } from './change-stamp.js';

export interface ResourceRecord {
  identifier: string;
  name: string;
  scopes: string[];
  /** seconds */
  accessTokenTtl: number;
  tokenFormat: ResourceInput['tokenFormat'];
  signingAlg: ResourceInput['signingAlg'];
  introspectors: string[];
  createdAt: Date;
  updatedAt: Date;
}

export type ResourceData = Required<ResourceInput>;

type Row = NonNullable<Awaited<ReturnType<Db['resourceServer']['findUnique']>>>;

function toRecord(row: Row): ResourceRecord {
  return {
    ...row,
    scopes: row.scopes as string[],
    tokenFormat: row.tokenFormat as ResourceRecord['tokenFormat'],
    signingAlg: row.signingAlg as ResourceRecord['signingAlg'],
    introspectors: row.introspectors as string[],
  };
}

export async function findResource(db: Pick<Db, 'resourceServer'>, identifier: string): Promise<ResourceRecord | null> {
  const row = await db.resourceServer.findUnique({ where: { identifier } });
  return row ? toRecord(row) : null;
}

export async function listResources(db: Pick<Db, 'resourceServer'>): Promise<ResourceRecord[]> {
  return (await db.resourceServer.findMany({ orderBy: { identifier: 'asc' } })).map(toRecord);
}

export async function createResource(db: Db, data: ResourceData): Promise<ResourceRecord> {
  const [row] = await db.$transaction([db.resourceServer.create({ data }), bumpChangeStamp(db)]);
  return toRecord(row);
}

export async function deleteResource(db: Db, identifier: string): Promise<void> {
  await db.$transaction([db.resourceServer.delete({ where: { identifier } }), bumpChangeStamp(db)]);
}

/** Clients that still list this API. */
export async function clientsUsingResource(db: Pick<Db, 'client'>, identifier: string): Promise<string[]> {
  const clients = await db.client.findMany({ select: { clientId: true, resources: true } });
  return clients.filter((c) => (c.resources as string[]).includes(identifier)).map((c) => c.clientId);
}

export async function upsertResourceTx(tx: Pick<Db, 'resourceServer'>, data: ResourceData): Promise<void> {
  const { identifier, ...rest } = data;
  await tx.resourceServer.upsert({ where: { identifier }, create: data, update: rest });
}
