import type { Db } from './database.js';
import { assertStorable, isStorable } from './text.js';
import type { PayloadLookup } from './payload-lookup.js';

/**
 * Every artifact oidc-provider persists (sessions, interactions, codes, tokens,
 * grants, initial access tokens, …): one `OidcPayload` row, keyed by
 * (type, id). `grantId`, `uid` and `userCode` are columns so they can be looked
 * up; every lookup filters by type. Only this module knows the row shape.
 */

type Payloads = Pick<Db, 'oidcPayload'>;

export interface StoredPayload {
  payload: Record<string, unknown>;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

const columns = { payload: true, expiresAt: true, consumedAt: true } as const;

/** Throws UnstorableTextError when the payload holds text no database can store (see text.ts). */
export async function savePayload(db: Payloads, type: string, id: string, payload: Record<string, unknown>, expiresAt: Date | null): Promise<void> {
  assertStorable(id, 'id');
  assertStorable(payload);
  const data = {
    payload: payload as object,
    grantId: typeof payload.grantId === 'string' ? payload.grantId : null,
    userCode: typeof payload.userCode === 'string' ? payload.userCode : null,
    uid: typeof payload.uid === 'string' ? payload.uid : null,
    expiresAt,
  };
  await db.oidcPayload.upsert({ where: { type_id: { type, id } }, create: { id, type, ...data }, update: data });
}

export async function findPayload(db: Payloads, type: string, id: string): Promise<StoredPayload | null> {
  // text that cannot be stored is in no row
  if (!isStorable(id)) return null;
  return db.oidcPayload.findUnique({ where: { type_id: { type, id } }, select: columns }) as Promise<StoredPayload | null>;
}

/**
 * Finds payloads by (type, id), batching the lookups asked for in the same
 * tick into one query. oidc-provider looks a token up as several kinds at once
 * (introspection and revocation without a type hint ask for an access token,
 * client-credentials token and refresh token in parallel): one query instead
 * of three.
 */
export class PayloadReader {
  #pending: { type: string; id: string; resolve(row: StoredPayload | null): void; reject(err: unknown): void }[] = [];

  constructor(
    private readonly db: Payloads,
    /** the database's own fast read (payload-lookup.ts); without it, Prisma */
    private readonly lookup?: PayloadLookup,
  ) {}

  find(type: string, id: string): Promise<StoredPayload | null> {
    if (!isStorable(id)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      if (this.#pending.push({ type, id, resolve, reject }) === 1) process.nextTick(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    try {
      if (batch.length === 1 && !this.lookup) {
        batch[0].resolve(await findPayload(this.db, batch[0].type, batch[0].id));
        return;
      }
      const types = [...new Set(batch.map((b) => b.type))];
      const ids = [...new Set(batch.map((b) => b.id))];
      const rows = this.lookup
        ? await this.lookup(types, ids)
        : ((await this.db.oidcPayload.findMany({ where: { type: { in: types }, id: { in: ids } }, select: { type: true, id: true, ...columns } })) as (StoredPayload & { type: string; id: string })[]);
      for (const b of batch) {
        const row = rows.find((r) => r.type === b.type && r.id === b.id);
        b.resolve(row ? { payload: row.payload, expiresAt: row.expiresAt, consumedAt: row.consumedAt } : null);
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}

export async function findPayloadBy(db: Payloads, type: string, by: { uid: string } | { userCode: string }): Promise<StoredPayload | null> {
  if (!isStorable('uid' in by ? by.uid : by.userCode)) return null;
  return db.oidcPayload.findFirst({ where: { type, ...by }, select: columns }) as Promise<StoredPayload | null>;
}

export async function deletePayload(db: Payloads, type: string, id: string): Promise<void> {
  if (!isStorable(id)) return;
  await db.oidcPayload.deleteMany({ where: { type, id } });
}

export async function deletePayloadsOfGrant(db: Payloads, type: string, grantId: string): Promise<void> {
  if (!isStorable(grantId)) return;
  await db.oidcPayload.deleteMany({ where: { type, grantId } });
}

/** Every artifact stored under these grants, and the grants themselves. */
export async function deleteGrants(db: Payloads, grantIds: string[]): Promise<void> {
  if (grantIds.length) await db.oidcPayload.deleteMany({ where: { OR: [{ grantId: { in: grantIds } }, { type: 'Grant', id: { in: grantIds } }] } });
}

/**
 * Marks the artifact consumed, atomically: a conditional update, so of any
 * number of racing calls exactly one returns true.
 */
export async function consumePayload(db: Payloads, type: string, id: string, at: Date): Promise<boolean> {
  if (!isStorable(id)) return false;
  const { count } = await db.oidcPayload.updateMany({ where: { type, id, consumedAt: null }, data: { consumedAt: at } });
  return count === 1;
}

/** Undoes a consume (a single-use initial access token whose registration then failed). */
export async function unconsumePayload(db: Payloads, type: string, id: string): Promise<void> {
  await db.oidcPayload.updateMany({ where: { type, id }, data: { consumedAt: null } });
}

/** Artifacts of one type that have not expired, by id. */
export async function listLivePayloads(db: Payloads, type: string, now: Date): Promise<(StoredPayload & { id: string })[]> {
  return (await db.oidcPayload.findMany({
    where: { type, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    orderBy: { id: 'asc' },
    select: { id: true, ...columns },
  })) as (StoredPayload & { id: string })[];
}

/** Ids of one type that start with `prefix`, matched literally (no wildcards). */
export async function payloadIdsStartingWith(db: Payloads, type: string, prefix: string): Promise<string[]> {
  if (!isStorable(prefix)) return [];
  const rows = await db.oidcPayload.findMany({ where: { type, id: { startsWith: prefix } }, select: { id: true } });
  // LIKE-based on some databases: keep only literal prefix matches
  return rows.map((r) => r.id).filter((id) => id.startsWith(prefix));
}

/** Rows one purge statement deletes at most: short statements (and under SQLite's limit of bound parameters), so requests' writes never wait long. */
export const PURGE_BATCH = 500;

/**
 * Deletes artifacts whose expiry has passed, PURGE_BATCH rows at a time,
 * yielding between batches; returns how many. A million expired tokens are
 * gone in a few hundred short statements instead of one long one that would
 * hold SQLite's write lock (or a PostgreSQL table scan) against every request.
 */
export async function purgeExpiredPayloads(db: Payloads, now: Date, batch = PURGE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = (await db.oidcPayload.findMany({ where: { expiresAt: { lt: now } }, select: { id: true }, take: batch })).map((r) => r.id);
    if (!ids.length) return total;
    // expiresAt again: an id may name artifacts of several types, and only expired ones go
    const { count } = await db.oidcPayload.deleteMany({ where: { id: { in: ids }, expiresAt: { lt: now } } });
    total += count;
    if (ids.length < batch) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
