import type { Db } from './database.js';
import { RowNotFoundError, translated } from './errors.js';
import { assertStorable, isStorable } from './text.js';

/**
 * Webhooks and their outbox, as the `Webhook`, `WebhookDelivery` and
 * `WebhookAttempt` tables hold them. Only this module knows the row shapes.
 *
 * A delivery is claimed with one conditional UPDATE (due, not delivered, not
 * given up, not locked by a live sender), so of nodes racing for one row
 * exactly one updates it, on SQLite and PostgreSQL alike. The claim's
 * `lockedUntil` doubles as the sender's token: its result is written only
 * while the row still carries it.
 */

type Webhooks = Pick<Db, 'webhook'>;
type Deliveries = Pick<Db, 'webhookDelivery'>;
type Attempts = Pick<Db, 'webhookAttempt'>;
type All = Pick<Db, 'webhook' | 'webhookDelivery' | 'webhookAttempt'>;

export interface WebhookRow {
  id: string;
  url: string;
  /** audit actions, or ["*"] */
  events: string[];
  /** whsec_..., or its AES-256-GCM encryption when `secretEncrypted` */
  secret: string;
  secretEncrypted: boolean;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeliveryRow {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  payload: Record<string, unknown>;
  attempts: number;
  nextAttemptAt: Date;
  lockedUntil: Date | null;
  deliveredAt: Date | null;
  failedAt: Date | null;
  createdAt: Date;
}

export interface AttemptRow {
  id: string;
  deliveryId: string;
  at: Date;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export type NewDelivery = Pick<DeliveryRow, 'id' | 'webhookId' | 'eventId' | 'eventType' | 'payload' | 'nextAttemptAt'>;

type WebhookDbRow = NonNullable<Awaited<ReturnType<Db['webhook']['findUnique']>>>;
type DeliveryDbRow = NonNullable<Awaited<ReturnType<Db['webhookDelivery']['findUnique']>>>;

const toWebhook = (r: WebhookDbRow): WebhookRow => ({ ...r, events: r.events as string[] });
const toDelivery = (r: DeliveryDbRow): DeliveryRow => ({ ...r, payload: r.payload as Record<string, unknown> });

export async function insertWebhook(db: Webhooks, row: Omit<WebhookRow, 'createdAt' | 'updatedAt'>): Promise<WebhookRow> {
  assertStorable(row);
  return toWebhook(await translated(db.webhook.create({ data: { ...row, events: row.events } })));
}

export async function findWebhook(db: Webhooks, id: string): Promise<WebhookRow | null> {
  if (!isStorable(id)) return null;
  const row = await db.webhook.findUnique({ where: { id } });
  return row ? toWebhook(row) : null;
}

export async function listWebhooks(db: Webhooks): Promise<WebhookRow[]> {
  return (await db.webhook.findMany({ orderBy: { createdAt: 'asc' } })).map(toWebhook);
}

/** The webhooks that receive events: their ids and event lists (no secrets). */
export async function enabledWebhooks(db: Webhooks): Promise<{ id: string; events: string[] }[]> {
  const rows = await db.webhook.findMany({ where: { disabled: false }, select: { id: true, events: true } });
  return rows.map((r) => ({ id: r.id, events: r.events as string[] }));
}

export async function updateWebhookSecret(db: Webhooks, id: string, secret: string, secretEncrypted: boolean): Promise<void> {
  await translated(db.webhook.update({ where: { id }, data: { secret, secretEncrypted } }));
}

/** Sets `disabled`; false when it already was (or the webhook is gone): of racing callers exactly one gets true. */
export async function disableWebhook(db: Webhooks, id: string): Promise<boolean> {
  const { count } = await db.webhook.updateMany({ where: { id, disabled: false }, data: { disabled: true } });
  return count === 1;
}

/** Clears `disabled`; false when it was not disabled (or the webhook is gone). */
export async function enableWebhookRow(db: Webhooks, id: string): Promise<boolean> {
  const { count } = await db.webhook.updateMany({ where: { id, disabled: true }, data: { disabled: false } });
  return count === 1;
}

/** Deletes a webhook with its deliveries and their attempts; RowNotFoundError when it is not there. */
export async function deleteWebhookRow(db: All, id: string): Promise<{ deliveries: number }> {
  const ids = (await db.webhookDelivery.findMany({ where: { webhookId: id }, select: { id: true } })).map((r) => r.id);
  for (let i = 0; i < ids.length; i += 500) await db.webhookAttempt.deleteMany({ where: { deliveryId: { in: ids.slice(i, i + 500) } } });
  const { count } = await db.webhookDelivery.deleteMany({ where: { webhookId: id } });
  const deleted = await db.webhook.deleteMany({ where: { id } });
  if (deleted.count !== 1) throw new RowNotFoundError();
  return { deliveries: count };
}

/** Writes outbox rows (in the transaction of the events they carry). */
export async function insertDeliveries(db: Deliveries, rows: NewDelivery[]): Promise<void> {
  assertStorable(rows);
  for (let i = 0; i < rows.length; i += 500) {
    await db.webhookDelivery.createMany({ data: rows.slice(i, i + 500).map((r) => ({ ...r, payload: r.payload as object })) });
  }
}

/** No sender holds it at `now`: never claimed, or its claim has passed. */
const unclaimed = (now: Date) => ({ OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] });

/** The conditions under which a delivery may be sent at `now`. */
const due = (now: Date) => ({ deliveredAt: null, failedAt: null, nextAttemptAt: { lte: now }, ...unclaimed(now) });

/** Ids of deliveries due at `now`, the longest waiting first (candidates: claim each before sending). */
export async function dueDeliveryIds(db: Deliveries, now: Date, limit: number): Promise<string[]> {
  const rows = await db.webhookDelivery.findMany({ where: due(now), select: { id: true }, orderBy: { nextAttemptAt: 'asc' }, take: limit });
  return rows.map((r) => r.id);
}

/**
 * Claims a due delivery until `until`, counting the attempt: one conditional
 * UPDATE, true for the one node that got it.
 */
export async function claimDelivery(db: Deliveries, id: string, now: Date, until: Date): Promise<boolean> {
  const { count } = await db.webhookDelivery.updateMany({ where: { id, ...due(now) }, data: { lockedUntil: until, attempts: { increment: 1 } } });
  return count === 1;
}

/** A delivery with its webhook, to send it. */
export async function loadDelivery(db: All, id: string): Promise<{ delivery: DeliveryRow; webhook: WebhookRow | null } | null> {
  const row = await db.webhookDelivery.findUnique({ where: { id } });
  if (!row) return null;
  return { delivery: toDelivery(row), webhook: await findWebhook(db, row.webhookId) };
}

export async function insertAttempt(db: Attempts, row: AttemptRow): Promise<void> {
  assertStorable(row);
  await db.webhookAttempt.create({ data: row });
}

/** The receiver took it (whoever holds the claim now: a 2xx answer is a fact). */
export async function markDelivered(db: Deliveries, id: string, at: Date): Promise<void> {
  await db.webhookDelivery.updateMany({ where: { id, deliveredAt: null }, data: { deliveredAt: at, lockedUntil: null } });
}

/**
 * Ends a claim that did not deliver: the next try at `nextAttemptAt`, or given
 * up at `failedAt`, or (neither) due again at once. Only while the row still
 * carries this claim's `lockedUntil`; false when another sender took it over.
 */
export async function releaseDelivery(db: Deliveries, id: string, claim: Date, outcome: { nextAttemptAt?: Date; failedAt?: Date }): Promise<boolean> {
  const { count } = await db.webhookDelivery.updateMany({
    where: { id, lockedUntil: claim, deliveredAt: null },
    data: { lockedUntil: null, ...outcome },
  });
  return count === 1;
}

/**
 * Gives up, at `at`, every pending delivery of a webhook that no sender holds
 * (a claim that has not passed by `at` is left to its sender); how many.
 */
export async function failPendingDeliveries(db: Deliveries, webhookId: string, at: Date): Promise<number> {
  const { count } = await db.webhookDelivery.updateMany({
    where: { webhookId, deliveredAt: null, failedAt: null, ...unclaimed(at) },
    data: { failedAt: at, lockedUntil: null },
  });
  return count;
}

/**
 * Makes a delivery due at `now` again, whatever became of it (delivered, given
 * up, waiting for its next try), keeping its attempts; only while no sender
 * holds it. False when the webhook has no such delivery or a sender holds it.
 */
export async function requeueDelivery(db: Deliveries, webhookId: string, id: string, now: Date): Promise<boolean> {
  if (!isStorable(id)) return false;
  const { count } = await db.webhookDelivery.updateMany({
    where: { id, webhookId, ...unclaimed(now) },
    data: { nextAttemptAt: now, deliveredAt: null, failedAt: null, lockedUntil: null },
  });
  return count === 1;
}

export type DeliveryWithAttempts = DeliveryRow & { attemptLog: AttemptRow[] };

/** Each delivery with its attempts, in order. */
async function withAttempts(db: Attempts, rows: DeliveryRow[]): Promise<DeliveryWithAttempts[]> {
  const attempts = rows.length ? await db.webhookAttempt.findMany({ where: { deliveryId: { in: rows.map((r) => r.id) } }, orderBy: [{ at: 'asc' }, { id: 'asc' }] }) : [];
  return rows.map((r) => ({ ...r, attemptLog: attempts.filter((a) => a.deliveryId === r.id) }));
}

/** The newest deliveries of a webhook, each with its attempts in order. */
export async function recentDeliveries(db: All, webhookId: string, limit: number): Promise<DeliveryWithAttempts[]> {
  const rows = (await db.webhookDelivery.findMany({ where: { webhookId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit })).map(toDelivery);
  return withAttempts(db, rows);
}

/** One delivery with its attempts. */
export async function findDelivery(db: All, id: string): Promise<DeliveryWithAttempts | null> {
  if (!isStorable(id)) return null;
  const row = await db.webhookDelivery.findUnique({ where: { id } });
  return row ? (await withAttempts(db, [toDelivery(row)]))[0] : null;
}

/** Deletes at most `limit` finished deliveries (delivered or given up) older than `before`, with their attempts; how many. */
export async function deleteFinishedDeliveriesBefore(db: All, before: Date, limit: number): Promise<number> {
  const ids = (await db.webhookDelivery.findMany({
    where: { createdAt: { lt: before }, OR: [{ deliveredAt: { not: null } }, { failedAt: { not: null } }] },
    select: { id: true },
    orderBy: { createdAt: 'asc' },
    take: limit,
  })).map((r) => r.id);
  if (!ids.length) return 0;
  await db.webhookAttempt.deleteMany({ where: { deliveryId: { in: ids } } });
  return (await db.webhookDelivery.deleteMany({ where: { id: { in: ids } } })).count;
}
