import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Db, Tx } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import * as audit from '../storage/audit.js';
import type { HotStatements } from '../storage/hot-statements.js';
import type { NewDelivery } from '../storage/webhooks.js';
import type { AuditFilter, AuditRow } from '../storage/audit.js';
import { invalid, type Problem } from './errors.js';

/**
 * The audit trail: who changed what, and when, and every security event.
 * Services record their own changes (`recordAudit`, in the transaction of the
 * change); who did it comes from the door the request came through
 * (`withActor`: the CLI, the management API, a person's or an anonymous HTTP
 * request), so no rule needs an actor parameter. A row never holds a secret or
 * token: details whose names say they are one are dropped before writing.
 */

export type AuditEvent = AuditRow;

export type Actor =
  | { type: 'cli' }
  | { type: 'system' }
  | { type: 'admin-client'; id: string; address?: string }
  | { type: 'account'; id: string; address?: string }
  /** an app, authenticated at the token endpoint */
  | { type: 'client'; id: string; address?: string }
  | { type: 'anonymous'; address?: string };

/** Every action the trail records; webhooks subscribe to these. */
export const AUDIT_ACTIONS = [
  'client.created', 'client.updated', 'client.deleted', 'client.secret_rotated', 'client.registered',
  'api.created', 'api.updated', 'api.deleted',
  'registration_token.created', 'registration_token.revoked',
  'signing_key.rotated',
  'sign_in.succeeded', 'sign_in.failed', 'account.created', 'account.linked',
  'account.disabled', 'account.enabled', 'account.deleted', 'account.signed_out_everywhere',
  'account.role_granted', 'account.role_revoked',
  'consent.granted', 'consent.withdrawn',
  'refresh_token.reuse_detected', 'token.exchanged', 'rate_limit.tripped',
  'webhook.created', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled', 'webhook.enabled', 'webhook.redelivered',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_TARGETS = ['client', 'api', 'account', 'consent', 'signing_key', 'registration_token', 'webhook', 'grant'] as const;
export type AuditTargetType = (typeof AUDIT_TARGETS)[number];

export interface AuditInput {
  action: AuditAction;
  target?: { type: AuditTargetType; id: string };
  outcome?: 'success' | 'failure';
  /** what else is worth knowing; never a secret or a token */
  details?: Record<string, unknown>;
  /** who, when not the current door's actor */
  actor?: Actor;
}

const actors = new AsyncLocalStorage<Actor>();

/** Runs `fn` with `actor` as the author of every change recorded inside it. */
export function withActor<T>(actor: Actor, fn: () => T): T {
  return actors.run(actor, fn);
}

export const currentActor = (): Actor => actors.getStore() ?? { type: 'system' };

/** Detail names that would carry a credential: never written. */
const SECRET_NAMES = /secret|token|password|assertion|verifier|private|jwks?$|^code$|cookie|authorization/i;

function withoutSecrets(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([name, value]) => !SECRET_NAMES.test(name) && value !== undefined));
}

/** Time-ordered ids: the millisecond (base 36, fixed width), then 64 random bits. */
export const auditId = (at: Date) => `${at.getTime().toString(36).padStart(10, '0')}${randomBytes(8).toString('hex')}`;

/** Hooks that run with every batch of recorded events, in their transaction (webhooks' outbox). */
type Subscriber = (db: Tx, events: AuditEvent[]) => Promise<void>;
const subscribers: Subscriber[] = [];
export function onAuditEvent(subscriber: Subscriber): void {
  if (!subscribers.includes(subscriber)) subscribers.push(subscriber);
}

/**
 * Hooks that give the rows to write with a batch of events recorded without
 * Prisma (recordAuditHot): the webhooks' outbox rows. The same rule as the
 * subscriber's, read through the hot statements.
 */
type HotSubscriber = (hot: Pick<HotStatements, 'enabledWebhooks'>, events: AuditEvent[]) => Promise<NewDelivery[]>;
const hotSubscribers: HotSubscriber[] = [];
export function onAuditEventHot(subscriber: HotSubscriber): void {
  if (!hotSubscribers.includes(subscriber)) hotSubscribers.push(subscriber);
}

/**
 * Records events on a request's hot path (a sign-in) without Prisma: the
 * events and their outbox rows in one statement. A failure goes to `onError`,
 * as recordAuditQuietly's does.
 */
export async function recordAuditHot(hot: Pick<HotStatements, 'enabledWebhooks' | 'recordEvents'>, inputs: AuditInput[], onError: (err: unknown) => void, now: Date = new Date()): Promise<void> {
  try {
    const events = inputs.map((input) => toEvent(input, now));
    const rows = (await Promise.all(hotSubscribers.map((subscriber) => subscriber(hot, events)))).flat();
    await hot.recordEvents(events, rows);
  } catch (err) {
    onError(err);
  }
}

/** Records one event; inside a transaction, pass the transaction's client. */
export async function recordAudit(db: Tx, input: AuditInput, now: Date = new Date()): Promise<AuditEvent> {
  const [event] = await recordAuditMany(db, [input], now);
  return event;
}

/** Records several events at once (a seed file's changes): one statement per 500. */
export async function recordAuditMany(db: Tx, inputs: AuditInput[], now: Date = new Date()): Promise<AuditEvent[]> {
  const events = inputs.map((input) => toEvent(input, now));
  if (!events.length) return events;
  const write = async (tx: Tx) => {
    for (let i = 0; i < events.length; i += 500) await audit.insertAuditEvents(tx, events.slice(i, i + 500));
    for (const subscriber of subscribers) await subscriber(tx, events);
  };
  // the rows and what subscribers write (the webhooks' outbox) commit together: given
  // the database itself rather than a transaction, open one
  if (subscribers.length && '$transaction' in db) await transaction(db as Db, write);
  else await write(db);
  return events;
}

function toEvent(input: AuditInput, now: Date): AuditEvent {
  const actor = input.actor ?? currentActor();
  return {
    id: auditId(now),
    at: now,
    actorType: actor.type,
    actorId: 'id' in actor ? actor.id : null,
    address: 'address' in actor ? (actor.address ?? null) : null,
    action: input.action,
    targetType: input.target?.type ?? null,
    targetId: input.target?.id ?? null,
    outcome: input.outcome ?? 'success',
    details: withoutSecrets(input.details ?? {}),
  };
}

/**
 * Records an event outside the request's own work: a failure to write the trail
 * is logged by the caller and never turns the request into an error.
 */
export async function recordAuditQuietly(db: Tx, input: AuditInput, onError: (err: unknown) => void, now?: Date): Promise<void> {
  try {
    await recordAudit(db, input, now);
  } catch (err) {
    onError(err);
  }
}

/**
 * When each (limit, address) last went into each database's trail: a limit
 * tripped under attack is one row a minute, not one per request.
 */
const tripsByDb = new WeakMap<object, Map<string, number>>();

/** Records that a rate limit refused someone, at most once a minute per limit and address (per process). */
export async function auditRateLimitTripped(db: Tx, limit: string, address: string | undefined, details: Record<string, unknown>, onError: (err: unknown) => void, now = Date.now()): Promise<void> {
  const key = `${limit} ${address ?? '-'}`;
  let trips = tripsByDb.get(db);
  if (!trips) tripsByDb.set(db, (trips = new Map()));
  if (now - (trips.get(key) ?? -Infinity) < 60_000) return;
  if (trips.size >= 10_000) trips.clear();
  trips.set(key, now);
  await recordAuditQuietly(db, { action: 'rate_limit.tripped', outcome: 'failure', actor: { type: 'anonymous', address }, details: { limit, ...details } }, onError, new Date(now));
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  targetType?: string;
  target?: string;
  outcome?: string;
  since?: string;
  until?: string;
  before?: string;
  limit?: number;
}

/** Lists events, newest first, under one set of rules for every door. */
export async function listAudit(db: Db, q: AuditQuery): Promise<AuditEvent[]> {
  const problems: Problem[] = [];
  const date = (name: 'since' | 'until') => {
    const v = q[name];
    if (v === undefined) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) problems.push({ path: [name], message: `not a date: ${v} (use ISO 8601, e.g. 2026-11-26T12:00:00Z)` });
    // what both databases hold (and Prisma writes): four-digit years
    else if (d.getUTCFullYear() < 0 || d.getUTCFullYear() > 9999) problems.push({ path: [name], message: `out of range: ${v} (years 0 to 9999)` });
    return d;
  };
  const since = date('since');
  const until = date('until');
  if (q.action !== undefined && !(AUDIT_ACTIONS as readonly string[]).includes(q.action)) problems.push({ path: ['action'], message: `unknown action ${q.action}` });
  if (q.targetType !== undefined && !(AUDIT_TARGETS as readonly string[]).includes(q.targetType)) problems.push({ path: ['targetType'], message: `unknown target type ${q.targetType}` });
  if (q.outcome !== undefined && q.outcome !== 'success' && q.outcome !== 'failure') problems.push({ path: ['outcome'], message: 'must be success or failure' });
  const limit = q.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) problems.push({ path: ['limit'], message: 'must be a whole number from 1 to 1000' });
  if (problems.length) throw invalid(problems);
  const filter: AuditFilter = {
    action: q.action, actorId: q.actor, targetType: q.targetType, targetId: q.target, outcome: q.outcome, since, until, before: q.before, limit,
  };
  return audit.listAuditEvents(db, filter);
}

/** The right to erasure, in the caller's transaction: a deleted person's events keep no client address. */
export const forgetAddressesOf = (db: Tx, accountId: string) => audit.forgetAddressesOf(db, accountId);

/** Retention: deletes events older than `days`, 500 at a time; how many. */
export async function purgeAudit(db: Db, days: number, now: Date = new Date()): Promise<number> {
  const before = new Date(now.getTime() - days * 86_400_000);
  let total = 0;
  for (;;) {
    const n = await audit.deleteAuditEventsBefore(db, before, 500);
    total += n;
    if (n < 500) return total;
  }
}
