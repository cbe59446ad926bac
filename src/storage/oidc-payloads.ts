import type { Db } from './database.js';
import { assertStorable, isStorable } from './text.js';
import type { HotStatements } from './hot-statements.js';
import { ID_PREFIX_LENGTH, keepsId, openPayload, sealPayload, storedKey, storedUserCode } from './payload-sealing.js';

/**
 * Every artifact oidc-provider persists (sessions, interactions, codes, tokens,
 * grants, initial access tokens, …): one `OidcPayload` row, keyed by
 * (type, digest of the id): no bearer credential is stored as it is
 * (payload-sealing.ts). Functions here take values and digest them; only
 * those named *ByKey take the stored key. `grantId`, `uid` and `userCode` are columns so they can be looked
 * up; every lookup filters by type. Only this module knows the row shape.
 */

type Payloads = Pick<Db, 'oidcPayload'>;

export interface StoredPayload {
  payload: Record<string, unknown>;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

/**
 * The artifacts as oidc-provider's adapter reads and writes them, on the hot
 * statements (hot-statements.ts): one store per provider, shared by its models.
 * Text no database can store is refused on writes and found nowhere on reads.
 */
export class PayloadStore {
  #pending: { type: string; id: string; resolve(row: StoredPayload | null): void; reject(err: unknown): void }[] = [];

  constructor(
    private readonly hot: HotStatements,
    /** the server's secret for values short enough to guess (device user codes): see payload-sealing.ts */
    private readonly pepper?: Buffer,
  ) {}

  /**
   * By (type, id), batching the lookups asked for in the same tick into one
   * query. oidc-provider looks a token up as several kinds at once
   * (introspection and revocation without a type hint ask for an access token,
   * client-credentials token and refresh token in parallel): one query instead
   * of three.
   */
  find(type: string, id: string): Promise<StoredPayload | null> {
    if (!isStorable(id)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      if (this.#pending.push({ type, id, resolve, reject }) === 1) process.nextTick(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending.map((b) => ({ ...b, key: storedKey(b.type, b.id) }));
    this.#pending = [];
    try {
      const rows = await this.hot.findPayloads([...new Set(batch.map((b) => b.type))], [...new Set(batch.map((b) => b.key))]);
      for (const b of batch) {
        const row = rows.find((r) => r.type === b.type && r.id === b.key);
        b.resolve(row ? { payload: openPayload(b.type, row.payload, { id: b.id }), expiresAt: row.expiresAt, consumedAt: row.consumedAt } : null);
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /** A session by its uid (it comes back without its value), a device code by its user code. */
  async findBy(type: string, by: { uid: string } | { userCode: string }): Promise<StoredPayload | null> {
    const value = 'uid' in by ? by.uid : by.userCode;
    if (!isStorable(value)) return null;
    const row = 'uid' in by ? await this.hot.findPayloadBy(type, 'uid', by.uid) : await this.hot.findPayloadBy(type, 'userCode', storedUserCode(by.userCode, this.pepper));
    return row && { ...row, payload: openPayload(type, row.payload, 'userCode' in by ? { userCode: by.userCode } : { other: true }, this.pepper) };
  }

  /** Throws UnstorableTextError when the payload holds text no database can store (see text.ts). */
  async save(type: string, id: string, payload: Record<string, unknown>, expiresAt: Date | null): Promise<void> {
    assertStorable(id, 'id');
    assertStorable(payload);
    const text = (key: string) => (typeof payload[key] === 'string' ? (payload[key] as string) : null);
    const userCode = text('userCode');
    await this.hot.savePayload({
      type, id: storedKey(type, id), payload: sealPayload(type, id, payload, this.pepper), grantId: text('grantId'), accountId: text('accountId'),
      userCode: userCode === null || keepsId(type) ? userCode : storedUserCode(userCode, this.pepper), uid: text('uid'), expiresAt,
    });
  }

  /**
   * Saves the artifact unless a live one has its (type, id): whether this call
   * did. Of any number of racing calls, on every instance, exactly one does.
   */
  async saveIfAbsent(type: string, id: string, payload: Record<string, unknown>, expiresAt: Date, now: Date): Promise<boolean> {
    assertStorable(id, 'id');
    assertStorable(payload);
    return this.hot.insertPayloadIfAbsent({ type, id: storedKey(type, id), payload: sealPayload(type, id, payload), grantId: null, accountId: null, userCode: null, uid: null, expiresAt }, now);
  }

  /** Marks the artifact consumed, atomically: of any number of racing calls exactly one returns true. */
  async consume(type: string, id: string, at: Date): Promise<boolean> {
    return isStorable(id) && this.hot.consumePayload(type, storedKey(type, id), at);
  }

  async delete(type: string, id: string): Promise<void> {
    if (isStorable(id)) await this.hot.deletePayload(type, storedKey(type, id));
  }

  async deleteOfGrant(type: string, grantId: string): Promise<void> {
    if (isStorable(grantId)) await this.hot.deletePayloadsOfGrant(type, grantId);
  }
}

/** Deletes the artifact whose value is `id`. */
export async function deletePayload(db: Payloads, type: string, id: string): Promise<void> {
  if (!isStorable(id)) return;
  await db.oidcPayload.deleteMany({ where: { type, id: storedKey(type, id) } });
}

/** Deletes the row stored under `key` (a key from listLivePayloads). */
export async function deletePayloadByKey(db: Payloads, type: string, key: string): Promise<void> {
  await db.oidcPayload.deleteMany({ where: { type, id: key } });
}

/** Every artifact of a person: sessions, grants, codes, tokens. How many. */
export async function deletePayloadsOfAccount(db: Payloads, accountId: string): Promise<number> {
  if (!isStorable(accountId)) return 0;
  return (await db.oidcPayload.deleteMany({ where: { accountId } })).count;
}

/** Every artifact stored under these grants, and the grants themselves. */
export async function deleteGrants(db: Payloads, grantIds: string[]): Promise<void> {
  if (grantIds.length) await db.oidcPayload.deleteMany({ where: { OR: [{ grantId: { in: grantIds } }, { type: 'Grant', id: { in: grantIds } }] } });
}

/** Artifacts of these types under this grant whose payload's `field` starts with `prefix`: deleted. */
export async function deleteTaggedOfGrant(db: Payloads, grantId: string, types: string[], field: string, prefix: string): Promise<void> {
  if (!isStorable(grantId)) return;
  const rows = await db.oidcPayload.findMany({ where: { grantId, type: { in: types } }, select: { type: true, id: true, payload: true } });
  const tagged = rows.filter((r) => {
    const tag = (r.payload as Record<string, unknown> | null)?.[field];
    return typeof tag === 'string' && tag.startsWith(prefix);
  });
  if (tagged.length) await db.oidcPayload.deleteMany({ where: { OR: tagged.map((r) => ({ type: r.type, id: r.id })) } });
}

/**
 * Marks the artifact consumed, atomically: a conditional update, so of any
 * number of racing calls exactly one returns true.
 */
export async function consumePayload(db: Payloads, type: string, id: string, at: Date): Promise<boolean> {
  if (!isStorable(id)) return false;
  const { count } = await db.oidcPayload.updateMany({ where: { type, id: storedKey(type, id), consumedAt: null }, data: { consumedAt: at } });
  return count === 1;
}

/** Undoes a consume (a single-use initial access token whose registration then failed). */
export async function unconsumePayload(db: Payloads, type: string, id: string): Promise<void> {
  if (!isStorable(id)) return;
  await db.oidcPayload.updateMany({ where: { type, id: storedKey(type, id) }, data: { consumedAt: null } });
}

/**
 * Artifacts of one type that have not expired, by the key they are stored
 * under (never their value: see payload-sealing.ts). Types named by a prefix
 * carry it as `payload.idPrefix`.
 */
export async function listLivePayloads(db: Payloads, type: string, now: Date): Promise<(StoredPayload & { id: string })[]> {
  return (await db.oidcPayload.findMany({
    where: { type, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    orderBy: { id: 'asc' },
    select: { id: true, payload: true, expiresAt: true, consumedAt: true },
  })) as (StoredPayload & { id: string })[];
}

/**
 * Keys of the live artifacts of one type (named by prefix, see
 * payload-sealing.ts) whose value starts with `prefix`, matched literally. A
 * prefix longer than the one kept must match it, and a whole value its digest.
 */
export async function payloadKeysStartingWith(db: Payloads, type: string, prefix: string, now: Date): Promise<{ key: string; prefix: string }[]> {
  if (!isStorable(prefix)) return [];
  const rows = (await listLivePayloads(db, type, now)).map((r) => ({ key: r.id, prefix: typeof r.payload.idPrefix === 'string' ? r.payload.idPrefix : '' }));
  if (prefix.length <= ID_PREFIX_LENGTH) return rows.filter((r) => r.prefix.startsWith(prefix));
  const whole = rows.filter((r) => r.key === storedKey(type, prefix));
  return whole.length ? whole : rows.filter((r) => r.prefix === prefix.slice(0, ID_PREFIX_LENGTH));
}

/** Rows one purge statement deletes at most: short statements (and under SQLite's limit of bound parameters), so requests' writes never wait long. */
export const PURGE_BATCH = 500;

/**
 * Deletes artifacts whose expiry has passed, PURGE_BATCH rows at a time,
 * yielding between batches; returns how many. A million expired tokens are
 * gone in a few thousand short statements instead of one long one that would
 * hold SQLite's write lock (or a PostgreSQL table scan) against every request.
 * Each statement finds its rows through the expiry index: its cost does not
 * grow with the table.
 */
export async function purgeExpiredPayloads(hot: Pick<HotStatements, 'deleteExpiredPayloads'>, now: Date, batch = PURGE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const count = await hot.deleteExpiredPayloads(now, batch);
    total += count;
    if (count < batch) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Every sign-in session of a person ("sign out everywhere"), found through the accountId index; how many. Their grants and tokens stay. */
export async function deleteSessionsOfAccount(db: Payloads, accountId: string): Promise<number> {
  if (!isStorable(accountId)) return 0;
  return (await db.oidcPayload.deleteMany({ where: { type: 'Session', accountId } })).count;
}
