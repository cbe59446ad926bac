import type { Db } from './database.js';
import { assertStorable, isStorable } from './text.js';

/** The audit trail, as the `AuditEvent` table holds it. Only this module knows the row shape. */

type Audit = Pick<Db, 'auditEvent'>;

export interface AuditRow {
  id: string;
  at: Date;
  actorType: string;
  actorId: string | null;
  address: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  action?: string;
  actorId?: string;
  targetType?: string;
  targetId?: string;
  outcome?: string;
  since?: Date;
  until?: Date;
  /** rows older than this id (the next page of a newest-first listing) */
  before?: string;
  limit: number;
}

type Row = NonNullable<Awaited<ReturnType<Db['auditEvent']['findUnique']>>>;
const toRow = (r: Row): AuditRow => ({ ...r, details: r.details as Record<string, unknown> });

export async function insertAuditEvents(db: Audit, rows: AuditRow[]): Promise<void> {
  assertStorable(rows);
  await db.auditEvent.createMany({ data: rows.map((row) => ({ ...row, details: row.details as object })) });
}

/**
 * The earliest time PostgreSQL takes as a timestamp parameter here (it refuses
 * year 0), so no stored event is older: a bound before it is answered without it.
 */
const EARLIEST = Date.parse('0001-01-01T00:00:00Z');

/** Newest first. Text no database stores matches nothing. */
export async function listAuditEvents(db: Audit, f: AuditFilter): Promise<AuditRow[]> {
  const texts = [f.action, f.actorId, f.targetType, f.targetId, f.outcome, f.before].filter((v): v is string => v !== undefined);
  if (!texts.every(isStorable)) return [];
  if (f.until && f.until.getTime() <= EARLIEST) return [];
  if (f.since && f.since.getTime() < EARLIEST) f = { ...f, since: undefined };
  const rows = await db.auditEvent.findMany({
    where: {
      ...(f.action ? { action: f.action } : {}),
      ...(f.actorId ? { actorId: f.actorId } : {}),
      ...(f.targetType ? { targetType: f.targetType } : {}),
      ...(f.targetId ? { targetId: f.targetId } : {}),
      ...(f.outcome ? { outcome: f.outcome } : {}),
      ...(f.since || f.until ? { at: { ...(f.since ? { gte: f.since } : {}), ...(f.until ? { lt: f.until } : {}) } } : {}),
      ...(f.before ? { id: { lt: f.before } } : {}),
    },
    orderBy: { id: 'desc' },
    take: f.limit,
  });
  return rows.map(toRow);
}

/** Deletes at most `limit` events older than `before`, oldest first; how many. */
export async function deleteAuditEventsBefore(db: Audit, before: Date, limit: number): Promise<number> {
  const ids = (await db.auditEvent.findMany({ where: { at: { lt: before } }, select: { id: true }, orderBy: { at: 'asc' }, take: limit })).map((r) => r.id);
  if (!ids.length) return 0;
  return (await db.auditEvent.deleteMany({ where: { id: { in: ids } } })).count;
}

/** The right to erasure: the client addresses recorded with a person's events are removed. How many rows. */
export async function forgetAddressesOf(db: Audit, accountId: string): Promise<number> {
  if (!isStorable(accountId)) return 0;
  const where = { OR: [{ actorId: accountId }, { targetType: 'account', targetId: accountId }], address: { not: null } };
  return (await db.auditEvent.updateMany({ where, data: { address: null } })).count;
}

/** What the console's overview counts: sign-ins and every failure since `since`, oldest first, at most `limit`. */
export async function activitySince(db: Audit, since: Date, limit: number): Promise<Pick<AuditRow, 'at' | 'action' | 'outcome' | 'details'>[]> {
  const rows = await db.auditEvent.findMany({
    where: { at: { gte: since }, OR: [{ action: 'sign_in.succeeded' }, { outcome: 'failure' }] },
    select: { at: true, action: true, outcome: true, details: true },
    orderBy: { at: 'asc' },
    take: limit,
  });
  return rows.map((r) => ({ ...r, details: r.details as Record<string, unknown> }));
}
