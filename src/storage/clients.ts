import type { Db } from './database.js';
import type { ClientFields } from './validation.js';
import { bumpChangeStamp } from './change-stamp.js';
import { revokeConsentsTx } from './consents.js';

type Tx = Pick<Db, 'client' | 'changeStamp'>;

export interface ClientRecord {
  clientId: string;
  name: string;
  secretHash: string | null;
  tokenEndpointAuthMethod: ClientFields['tokenEndpointAuthMethod'];
  grantTypes: ClientFields['grantTypes'];
  redirectUris: string[];
  scopes: string[];
  resources: string[];
  firstParty: boolean;
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  requirePar: boolean;
  /** registered by the app itself (RFC 7591) */
  dynamic: boolean;
  /** other registered metadata, as given */
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** What the CLI shows: never the hash. */
export type PublicClient = Omit<ClientRecord, 'secretHash'> & { hasSecret: boolean };

type Row = NonNullable<Awaited<ReturnType<Db['client']['findUnique']>>>;

function toRecord(row: Row): ClientRecord {
  return {
    ...row,
    tokenEndpointAuthMethod: row.tokenEndpointAuthMethod as ClientRecord['tokenEndpointAuthMethod'],
    grantTypes: row.grantTypes as ClientRecord['grantTypes'],
    redirectUris: row.redirectUris as string[],
    scopes: row.scopes as string[],
    resources: row.resources as string[],
    postLogoutRedirectUris: row.postLogoutRedirectUris as string[],
    metadata: row.metadata as Record<string, unknown>,
  };
}

export function publicClient({ secretHash, ...rest }: ClientRecord): PublicClient {
  return { ...rest, hasSecret: secretHash !== null };
}

export type ClientData = Required<Omit<ClientFields, 'clientId'>> & {
  clientId: string;
  secretHash: string | null;
  dynamic?: boolean;
  /** JSON-serializable registered metadata */
  metadata?: Record<string, string | string[]>;
};

export async function findClient(db: Pick<Db, 'client'>, clientId: string): Promise<ClientRecord | null> {
  const row = await db.client.findUnique({ where: { clientId } });
  return row ? toRecord(row) : null;
}

export async function listClients(db: Pick<Db, 'client'>): Promise<ClientRecord[]> {
  return (await db.client.findMany({ orderBy: { clientId: 'asc' } })).map(toRecord);
}

export async function createClient(db: Db, data: ClientData): Promise<ClientRecord> {
  const [row] = await db.$transaction([db.client.create({ data }), bumpChangeStamp(db)]);
  return toRecord(row);
}

export async function updateClient(db: Db, clientId: string, data: Partial<ClientData>): Promise<ClientRecord> {
  const [row] = await db.$transaction([db.client.update({ where: { clientId }, data }), bumpChangeStamp(db)]);
  return toRecord(row);
}

/** Deletes a client, its remembered consents and everything stored under their grants. */
export async function deleteClient(db: Db, clientId: string): Promise<void> {
  await db.$transaction(async (tx) => {
    await revokeConsentsTx(tx, { clientId });
    await tx.client.delete({ where: { clientId } });
    await bumpChangeStamp(tx);
  });
}

/** For use inside an interactive transaction (seed). */
export async function upsertClientTx(tx: Tx, data: ClientData): Promise<void> {
  const { clientId, ...rest } = data;
  await tx.client.upsert({ where: { clientId }, create: data, update: rest });
}
