import type { Tx } from '../../storage/database.js';
import type { HotStatements } from '../../storage/hot-statements.js';
import * as store from '../../storage/webhooks.js';
import type { NewDelivery } from '../../storage/webhooks.js';
import { onAuditEvent, onAuditEventHot, type AuditEvent } from '../audit.js';

/**
 * The webhooks' outbox: a subscriber of the audit trail writes one
 * `WebhookDelivery` per matching webhook and event in the event's own
 * transaction, so an event is sent if and only if it was recorded. The
 * delivery's id is the message's `webhook-id`, the same on every retry:
 * receivers deduplicate by it. Events recorded on the hot path (a sign-in)
 * get their rows from the same rule (`deliveriesFor`), written with the
 * events. Nothing is subscribed until `installWebhookOutbox()` is called:
 * createApp and the CLI's withDatabase call it.
 */

/**
 * The Standard Webhooks message of an audit event: type, timestamp, and the
 * event as `audit list --json` shows it, less the client address. The outbox
 * keeps a copy of the message, and erasing an account removes the addresses of
 * its events from the trail only; a receiver that needs the address reads the
 * event by its id.
 */
function message(event: AuditEvent): Record<string, unknown> {
  const { address: _address, ...data } = event;
  return { type: event.action, timestamp: event.at.toISOString(), data: { ...data, at: event.at.toISOString() } };
}

/** A delivery worker of this process (WebhookWorker), nudged when an event of this process is queued. */
export interface LocalWorker {
  nudge(): void;
}

const workers = new Set<LocalWorker>();

/** Nudges `worker` after this process queues a delivery, until removeLocalWorker. */
export function addLocalWorker(worker: LocalWorker): void {
  workers.add(worker);
}

export function removeLocalWorker(worker: LocalWorker): void {
  workers.delete(worker);
}

/** The rule of the outbox: one delivery per event and webhook that takes the event's type. */
function deliveriesFor(events: AuditEvent[], hooks: { id: string; events: string[] }[]): NewDelivery[] {
  return events.flatMap((event) =>
    hooks
      .filter((hook) => hook.events.includes('*') || hook.events.includes(event.action))
      .map((hook) => ({ id: `msg_${event.id}_${hook.id}`, webhookId: hook.id, eventId: event.id, eventType: event.action, payload: message(event), nextAttemptAt: event.at })));
}

/** Nudges the local workers after the queuing transaction has (most likely) committed; their poll catches what this misses. */
export function nudgeLocalWorkers(): void {
  if (workers.size) setTimeout(() => workers.forEach((w) => w.nudge()), 50).unref();
}

/** Queues each event for every enabled webhook that wants it, in the event's transaction. */
async function outbox(tx: Tx, events: AuditEvent[]): Promise<void> {
  // one cheap query per batch of events: webhooks are few
  const hooks = await store.enabledWebhooks(tx);
  if (!hooks.length) return;
  const rows = deliveriesFor(events, hooks);
  if (!rows.length) return;
  await store.insertDeliveries(tx, rows);
  nudgeLocalWorkers();
}

/** The outbox rows of events recorded on the hot path (recordAuditHot writes them with the events). */
async function hotOutbox(hot: Pick<HotStatements, 'enabledWebhooks'>, events: AuditEvent[]): Promise<NewDelivery[]> {
  const rows = deliveriesFor(events, await hot.enabledWebhooks());
  if (rows.length) nudgeLocalWorkers();
  return rows;
}

/**
 * Subscribes the outbox to the audit trail: once per process, before it
 * records events (calling again does nothing). createApp and the CLI's
 * withDatabase call it; a process that records events without either must too.
 */
export function installWebhookOutbox(): void {
  onAuditEvent(outbox);
  onAuditEventHot(hotOutbox);
}
