import { randomBytes } from 'node:crypto';
import type { Db } from '../../storage/database.js';
import { transaction } from '../../storage/database.js';
import { RowNotFoundError } from '../../storage/errors.js';
import * as store from '../../storage/webhooks.js';
import type { AttemptRow, DeliveryRow, DeliveryWithAttempts, WebhookRow } from '../../storage/webhooks.js';
import { isLoopbackHttp } from '../../common/loopback.js';
import { isStorable } from '../../storage/text.js';
import { AUDIT_ACTIONS, recordAudit } from '../audit.js';
import { conflict, invalid, notFound, type Problem } from '../errors.js';
import { nudgeLocalWorkers } from './outbox.js';

/**
 * The webhook registry: the receivers an admin registered (URL, events,
 * signing secret), the rules for making and changing them, and what their
 * outbox shows. Signing secrets are Standard Webhooks secrets
 * (https://www.standardwebhooks.com/), returned once and, with
 * KEY_ENCRYPTION_KEY, encrypted at rest.
 */

export type WebhookInfo = Omit<WebhookRow, 'secret' | 'secretEncrypted'> & { secretEncrypted: boolean };
export type AttemptInfo = Omit<AttemptRow, 'deliveryId'>;
export type DeliveryInfo = Omit<DeliveryRow, 'payload'> & { attemptLog: AttemptInfo[] };

const SECRET_PREFIX = 'whsec_';
/** bytes of a signing secret (the spec asks for 24 to 64) */
const SECRET_BYTES = 32;
const MAX_URL_LENGTH = 2048;

const info = ({ secret: _secret, ...row }: WebhookRow): WebhookInfo => row;
const deliveryInfo = ({ payload: _payload, attemptLog, ...d }: DeliveryWithAttempts): DeliveryInfo => ({ ...d, attemptLog: attemptLog.map(({ deliveryId: _id, ...a }) => a) });

/** A new signing secret: "whsec_" and the base64 of random bytes. */
export const generateWebhookSecret = () => `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;

/** The secret's key bytes: the base64 after the prefix. */
export const secretKey = (secret: string) => Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');

/*
 * Secrets at rest: with KEY_ENCRYPTION_KEY, the key bytes as an `oct` JWK under
 * services/keys.ts' AES-256-GCM scheme ("v1.<iv>.<tag>.<ciphertext>"), the
 * same as private signing keys. keys.ts is loaded only when needed.
 */
async function sealSecret(secret: string, kek: Buffer | undefined): Promise<{ secret: string; secretEncrypted: boolean }> {
  if (!kek) return { secret, secretEncrypted: false };
  const { encryptJwk } = await import('../keys.js');
  return { secret: encryptJwk({ kty: 'oct', k: secretKey(secret).toString('base64url') }, kek), secretEncrypted: true };
}

/** The signing secret of a webhook, decrypted with KEY_ENCRYPTION_KEY when it is stored encrypted. */
export async function openSecret(row: WebhookRow, kek: Buffer | undefined): Promise<string> {
  if (!row.secretEncrypted) return row.secret;
  if (!kek) throw new Error('the signing secret is encrypted: set KEY_ENCRYPTION_KEY');
  const { decryptJwk } = await import('../keys.js');
  let k: unknown;
  try {
    k = decryptJwk(row.secret, kek).k;
  } catch {
    throw new Error('the signing secret could not be decrypted: KEY_ENCRYPTION_KEY is wrong');
  }
  if (typeof k !== 'string') throw new Error('the stored signing secret is malformed');
  return `${SECRET_PREFIX}${Buffer.from(k, 'base64url').toString('base64')}`;
}

/** https, or http on a loopback host; no credentials, no fragment. */
function urlProblems(url: unknown): Problem[] {
  if (url === undefined || url === '') return [{ path: ['url'], message: 'required' }];
  if (typeof url !== 'string') return [{ path: ['url'], message: 'must be a URL' }];
  if (url.length > MAX_URL_LENGTH) return [{ path: ['url'], message: `must be at most ${MAX_URL_LENGTH} characters` }];
  if (!isStorable(url)) return [{ path: ['url'], message: 'must not contain a NUL character or a lone UTF-16 surrogate' }];
  if (!URL.canParse(url)) return [{ path: ['url'], message: `not an absolute URL: ${url}` }];
  const u = new URL(url);
  const problems: Problem[] = [];
  if (u.protocol !== 'https:' && !isLoopbackHttp(u)) {
    problems.push({ path: ['url'], message: 'must be https (http only for localhost, 127.0.0.1 or [::1])' });
  }
  if (u.username || u.password) problems.push({ path: ['url'], message: 'must not contain a user name or password' });
  if (u.hash) problems.push({ path: ['url'], message: 'must not have a fragment (#...)' });
  return problems;
}

function eventProblems(events: unknown): { events: string[]; problems: Problem[] } {
  if (events === undefined || (Array.isArray(events) && events.length === 0)) {
    return { events: [], problems: [{ path: ['events'], message: 'give at least one event: an audit action, or * for every event', hint: 'see gatehouse webhooks --help' }] };
  }
  if (!Array.isArray(events)) return { events: [], problems: [{ path: ['events'], message: 'must be a list of events' }] };
  const problems: Problem[] = [];
  events.forEach((e, i) => {
    if (e !== '*' && !(AUDIT_ACTIONS as readonly unknown[]).includes(e)) {
      // the list of events once, with the first unknown one
      const hint = problems.length ? undefined : `events are *, ${AUDIT_ACTIONS.join(', ')}`;
      problems.push({ path: ['events', i], message: `unknown event ${String(e)}`, ...(hint ? { hint } : {}) });
    }
  });
  const unique = [...new Set(events as string[])];
  return { events: unique.includes('*') ? ['*'] : unique, problems };
}

export interface WebhookInput {
  url?: unknown;
  events?: unknown;
}

/** Registers a receiver; the secret is returned here only. Refuses bad input with every problem, writing nothing. */
export async function createWebhook(db: Db, input: WebhookInput, kek: Buffer | undefined): Promise<{ webhook: WebhookInfo; secret: string }> {
  const { events, problems } = eventProblems(input.events);
  problems.unshift(...urlProblems(input.url));
  if (problems.length) throw invalid(problems);
  const url = input.url as string;
  const secret = generateWebhookSecret();
  const id = `wh_${randomBytes(8).toString('hex')}`;
  const sealed = await sealSecret(secret, kek);
  const row = await transaction(db, async (tx) => {
    const created = await store.insertWebhook(tx, { id, url, events, ...sealed, disabled: false });
    await recordAudit(tx, { action: 'webhook.created', target: { type: 'webhook', id }, details: { url: auditUrl(url), events } });
    return created;
  });
  return { webhook: info(row), secret };
}

/** The URL as the audit trail keeps it: without its query (which may carry a receiver's key). */
export const auditUrl = (url: string) => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

export async function listWebhooks(db: Db): Promise<WebhookInfo[]> {
  return (await store.listWebhooks(db)).map(info);
}

async function findWebhook(db: Db, id: string): Promise<WebhookRow> {
  const row = await store.findWebhook(db, id);
  if (!row) throw notFound(`no webhook with id ${id}`);
  return row;
}

/** A webhook with its most recent deliveries (newest first) and every attempt of each. */
export async function showWebhook(db: Db, id: string, limit = 20): Promise<WebhookInfo & { deliveries: DeliveryInfo[] }> {
  const row = await findWebhook(db, id);
  const deliveries = await store.recentDeliveries(db, id, limit);
  return {
    ...info(row),
    deliveries: deliveries.map(deliveryInfo),
  };
}

/** Deletes a webhook and its outbox (nothing more is sent to it). */
export async function deleteWebhook(db: Db, id: string): Promise<void> {
  const row = await findWebhook(db, id);
  try {
    await transaction(db, async (tx) => {
      const { deliveries } = await store.deleteWebhookRow(tx, id);
      await recordAudit(tx, { action: 'webhook.deleted', target: { type: 'webhook', id }, details: { url: auditUrl(row.url), deliveries } });
    });
  } catch (err) {
    // a racing delete got there first
    if (err instanceof RowNotFoundError) throw notFound(`no webhook with id ${id}`);
    throw err;
  }
}

/**
 * Sends to a webhook again after it was disabled (its receiver answered 410
 * Gone): events from now on; what was given up stays given up. A webhook that
 * is not disabled is left as it is.
 */
export async function enableWebhook(db: Db, id: string): Promise<WebhookInfo> {
  const row = await findWebhook(db, id);
  await transaction(db, async (tx) => {
    if (await store.enableWebhookRow(tx, id)) await recordAudit(tx, { action: 'webhook.enabled', target: { type: 'webhook', id }, details: { url: auditUrl(row.url) } });
  });
  return info(await findWebhook(db, id));
}

/** A new signing secret, returned here only; every later attempt is signed with it (pending deliveries too). */
export async function rotateWebhookSecret(db: Db, id: string, kek: Buffer | undefined): Promise<{ webhook: WebhookInfo; secret: string }> {
  await findWebhook(db, id);
  const secret = generateWebhookSecret();
  const sealed = await sealSecret(secret, kek);
  try {
    await store.updateWebhookSecret(db, id, sealed.secret, sealed.secretEncrypted);
  } catch (err) {
    if (err instanceof RowNotFoundError) throw notFound(`no webhook with id ${id}`);
    throw err;
  }
  await recordAudit(db, { action: 'webhook.secret_rotated', target: { type: 'webhook', id } });
  return { webhook: info(await findWebhook(db, id)), secret };
}

/**
 * Sends a delivery again (one that was given up, or one its receiver lost):
 * due at once, under the same webhook-id, so a receiver that deduplicates
 * keeps one. Its attempts stay, and count on: after a failure it retries with
 * the backoff while its event is less than a day old, and gives up after that.
 * Refused while a sender holds it, and while the webhook is disabled.
 */
export async function redeliver(db: Db, webhookId: string, deliveryId: string): Promise<DeliveryInfo> {
  const webhook = await findWebhook(db, webhookId);
  const missing = () => notFound(`webhook ${webhookId} has no delivery ${deliveryId}`);
  const found = await store.findDelivery(db, deliveryId);
  if (found?.webhookId !== webhookId) throw missing();
  if (webhook.disabled) throw conflict(`webhook ${webhookId} is disabled: enable it first`);
  await transaction(db, async (tx) => {
    if (!(await store.requeueDelivery(tx, webhookId, deliveryId, new Date()))) {
      throw (await store.findDelivery(tx, deliveryId)) ? conflict(`delivery ${deliveryId} is being sent now: try again when its attempt has ended`) : missing();
    }
    await recordAudit(tx, { action: 'webhook.redelivered', target: { type: 'webhook', id: webhookId }, details: { url: auditUrl(webhook.url), delivery: deliveryId, eventType: found.eventType } });
  });
  nudgeLocalWorkers();
  const requeued = await store.findDelivery(db, deliveryId);
  if (!requeued) throw missing();
  return deliveryInfo(requeued);
}

/** Retention: deletes delivered or given-up deliveries (and their attempts) older than `days`; how many. */
export async function purgeWebhookDeliveries(db: Db, days: number, now: Date = new Date()): Promise<number> {
  const before = new Date(now.getTime() - days * 86_400_000);
  let total = 0;
  for (;;) {
    const n = await store.deleteFinishedDeliveriesBefore(db, before, 500);
    total += n;
    if (n < 500) return total;
  }
}
