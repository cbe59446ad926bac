import { createHmac, randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Db } from '../../storage/database.js';
import { transaction } from '../../storage/database.js';
import * as store from '../../storage/webhooks.js';
import type { DeliveryRow, WebhookRow } from '../../storage/webhooks.js';
import { recordAudit, type AuditAction } from '../audit.js';
import { addLocalWorker, removeLocalWorker } from './outbox.js';
import { guardedDispatcher, protectedDispatcher } from './outbound.js';
import { auditUrl, openSecret, secretKey } from './registry.js';

/**
 * Webhook deliveries: the outbox's messages sent to their receivers, signed
 * as Standard Webhooks (https://www.standardwebhooks.com/) messages.
 *
 * - Every node polls for due deliveries (about once a second, and at once
 *   after an event of its own), claims each with one conditional UPDATE that
 *   sets `lockedUntil` (two nodes never send one at once), POSTs it with a
 *   10 s timeout and no redirects, and records the attempt. A 2xx delivers;
 *   410 Gone disables the webhook (audit `webhook.disabled`) and gives up its
 *   pending deliveries; anything else retries with backoff and jitter, for
 *   about a day, and no sooner than a 429's or 503's Retry-After. A sender
 *   that dies leaves its claim to expire (LOCK_MS), and the delivery is sent
 *   again.
 * - At most one attempt of a delivery is in flight anywhere: a request is
 *   aborted by a timer of our own well before its claim ends (CLAIM_MARGIN_MS),
 *   and a sender whose claim has lapsed records no retry or give-up over the
 *   claim of the node that took the delivery over.
 * - Without ALLOW_PRIVATE_NETWORK_REQUESTS, requests go through the guard of
 *   outbound.ts (no special-use addresses).
 */

/** The `webhook-signature` header of a message: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body". */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** seconds to wait after each failed attempt (jittered ±20%); hourly after the last */
export const RETRY_SCHEDULE = [1, 5, 30, 120, 600, 1800, 3600];
/** ms after its event a delivery is given up */
export const GIVE_UP_AFTER_MS = 24 * 3_600_000;
/** ms a request may take, answer included */
export const TIMEOUT_MS = 10_000;
/**
 * ms a request ends, at the latest, before its claim does: for the work before
 * the request (loading the delivery) and clocks that differ between nodes
 */
export const CLAIM_MARGIN_MS = 5_000;
/** ms a claim lasts: the longest request and a margin either side; a dead sender's deliveries go out again after it */
export const LOCK_MS = TIMEOUT_MS + 2 * CLAIM_MARGIN_MS;
/** a request that could have less time than this (its claim nearly over) is not started */
const MIN_REQUEST_MS = 1000;
/** the longest wait a receiver's Retry-After is followed for */
export const MAX_RETRY_AFTER_MS = 3_600_000;
const POLL_MS = 1000;
/** requests in flight per process */
const MAX_IN_FLIGHT = 16;

/**
 * When to try again after `attempts` failed attempts, or null to give up: the
 * backoff, and never before `notBefore` (a receiver's Retry-After); null when
 * that is past the give-up time.
 */
export function nextAttempt(attempts: number, createdAt: Date, now: number, random = Math.random, notBefore = 0): Date | null {
  const seconds = RETRY_SCHEDULE[Math.min(Math.max(attempts, 1), RETRY_SCHEDULE.length) - 1];
  const at = Math.max(now + seconds * 1000 * (0.8 + 0.4 * random()), notBefore);
  return at - createdAt.getTime() > GIVE_UP_AFTER_MS ? null : new Date(at);
}

/**
 * The wait a `Retry-After` header asks for (RFC 9110 §10.2.3: delay-seconds or
 * an HTTP-date) in ms, at most MAX_RETRY_AFTER_MS; undefined when it is
 * missing or malformed.
 */
export function retryAfterMs(value: string | null | undefined, now: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /i.test(text) && !Number.isNaN(Date.parse(text))) ms = Date.parse(text) - now;
  else return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** ms a request may take when its claim ends at `claimUntil`: TIMEOUT_MS, less when the claim ends sooner than that and its margin. */
export function requestBudget(claimUntil: Date, now: number): number {
  return Math.min(TIMEOUT_MS, claimUntil.getTime() - CLAIM_MARGIN_MS - now);
}

class AttemptTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Runs `work` with a signal that aborts after `ms`, or when `outer` does, and
 * settles by then whether or not `work` heeds its signal (reading the answer
 * included). The timer is a plain, referenced setTimeout, cleared at the end:
 * an AbortSignal.timeout inside AbortSignal.any can be garbage-collected before
 * it fires on Node 20 (nodejs/node#57736), and a request then stays open for
 * as long as the receiver likes, past its claim.
 */
export async function withDeadline<T>(ms: number, outer: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (outer.aborted) throw outer.reason;
  const controller = new AbortController();
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  const timer = setTimeout(() => controller.abort(new AttemptTimeoutError(`timed out after ${ms / 1000} s`)), ms);
  const stop = () => controller.abort(outer.reason);
  outer.addEventListener('abort', stop, { once: true });
  try {
    return await Promise.race([work(controller.signal), aborted]);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', stop);
  }
}

/** A failed request in one line: the cause's message when fetch wraps it. */
function describeFailure(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { message?: string; code?: string } };
  if (e?.name === 'TimeoutError') return e.message || 'timed out';
  const text = e?.cause?.message || e?.message || String(err);
  return text.slice(0, 500);
}

/** The trail's action for a webhook the system disabled (its receiver answered 410 Gone). */
const WEBHOOK_DISABLED: AuditAction = 'webhook.disabled';

/** What an attempt came to: the answer's status (and Retry-After), or why there was none. */
interface PostResult {
  status?: number;
  retryAfter?: string | null;
  error?: string;
  interrupted?: boolean;
}

export interface WebhookWorkerOptions {
  logger: Logger;
  keyEncryptionKey: Buffer | undefined;
  /** ALLOW_PRIVATE_NETWORK_REQUESTS: deliveries may reach special-use addresses */
  allowPrivateNetworkRequests: boolean;
  /** ms since the epoch */
  now?: () => number;
  pollMs?: number;
}

/**
 * Sends due deliveries, on every node. Never throws from its loop: database
 * trouble is logged once per outage, and delivery failures are attempts.
 */
export class WebhookWorker {
  readonly #now: () => number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stopping = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #failing = false;

  constructor(
    private readonly db: Db,
    private readonly options: WebhookWorkerOptions,
  ) {
    this.#now = options.now ?? Date.now;
    // each request in flight listens for the stop
    setMaxListeners(MAX_IN_FLIGHT + 10, this.#stopping.signal);
  }

  start(): void {
    if (!this.options.allowPrivateNetworkRequests) {
      try {
        protectedDispatcher();
      } catch (err) {
        this.options.logger.error({ err }, 'webhook deliveries to host names will fail');
      }
    }
    this.#stopped = false;
    addLocalWorker(this);
    this.#timer = setInterval(() => this.nudge(), this.options.pollMs ?? POLL_MS);
    this.#timer.unref();
    this.nudge();
  }

  /** Stops polling, interrupts requests in flight (their deliveries are due again at once) and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    removeLocalWorker(this);
    clearInterval(this.#timer);
    this.#stopping.abort();
    await this.#polling;
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Looks for due deliveries now (coalesced with a poll under way). */
  nudge(): void {
    if (this.#stopped) return;
    if (this.#polling) {
      this.#again = true;
      return;
    }
    this.#polling = this.#claimAndSend().then(() => {}).finally(() => {
      this.#polling = undefined;
      if (this.#again) {
        this.#again = false;
        this.nudge();
      }
    });
  }

  /** Claims and sends what is due, and waits for those sends (tests; the loop does not wait). */
  async runOnce(): Promise<void> {
    const sends = await this.#claimAndSend();
    await Promise.allSettled(sends);
  }

  async #claimAndSend(): Promise<Promise<void>[]> {
    const sends: Promise<void>[] = [];
    const free = MAX_IN_FLIGHT - this.#inFlight.size;
    if (free <= 0) return sends;
    try {
      const now = this.#now();
      const ids = await store.dueDeliveryIds(this.db, new Date(now), free);
      for (const id of ids) {
        // a stopping node claims nothing more
        if (this.#stopping.signal.aborted) break;
        // the claim's end is its token: results are written only while the row still holds it
        const until = new Date(now + LOCK_MS);
        if (!(await store.claimDelivery(this.db, id, new Date(now), until))) continue;
        const send = this.#send(id, until).finally(() => {
          this.#inFlight.delete(send);
          this.nudge();
        });
        this.#inFlight.add(send);
        sends.push(send);
      }
      if (this.#failing) this.options.logger.info('webhook deliveries resumed');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.options.logger.warn({ err }, 'could not look for webhook deliveries');
      this.#failing = true;
    }
    return sends;
  }

  /** One attempt of one claimed delivery, and what follows from its answer. Never throws. */
  async #send(id: string, claim: Date): Promise<void> {
    const { logger } = this.options;
    try {
      const loaded = await store.loadDelivery(this.db, id);
      if (!loaded) return;
      const { delivery, webhook } = loaded;
      const started = this.#now();
      const result = await this.#attempt(webhook, delivery, claim);
      const at = new Date(this.#now());
      const attempt = { id: randomUUID(), deliveryId: id, at: new Date(started), status: result.status ?? null, error: result.error ?? null, durationMs: Math.max(0, at.getTime() - started) };
      const log = { webhook: delivery.webhookId, delivery: id, attempt: delivery.attempts, status: result.status, error: result.error };
      if (result.status !== undefined && result.status >= 200 && result.status < 300) {
        // delivered first: a failure between the two writes loses an attempt row, never sends twice
        await store.markDelivered(this.db, id, at);
        await store.insertAttempt(this.db, attempt);
        return;
      }
      await store.insertAttempt(this.db, attempt);
      if (this.#stopping.signal.aborted && result.interrupted) {
        // this node is stopping: due again at once, for another node or the next start
        await store.releaseDelivery(this.db, id, claim, {});
        return;
      }
      if (result.status === 410 && webhook) {
        await this.#disable(webhook, id, claim, at);
        logger.warn(log, 'webhook receiver answered 410 Gone: webhook disabled, its pending deliveries given up');
        return;
      }
      const wait = result.status === 429 || result.status === 503 ? retryAfterMs(result.retryAfter, at.getTime()) : undefined;
      const next = webhook && !webhook.disabled ? nextAttempt(delivery.attempts, delivery.createdAt, at.getTime(), Math.random, at.getTime() + (wait ?? 0)) : null;
      // only while this node's claim stands: after it lapsed, another node may be sending
      if (!(await store.releaseDelivery(this.db, id, claim, next ? { nextAttemptAt: next } : { failedAt: at }))) {
        logger.warn(log, 'webhook delivery attempt ended after its claim had passed to another sender; its result is not applied');
      } else if (next) {
        logger.info({ ...log, retryAt: next.toISOString(), ...(wait !== undefined ? { retryAfterMs: wait } : {}) }, 'webhook delivery failed; will retry');
      } else {
        logger.warn(log, 'webhook delivery failed; gave up');
      }
    } catch (err) {
      // the claim expires and the delivery is sent again
      logger.warn({ err, delivery: id }, 'could not record a webhook delivery attempt');
    }
  }

  /** Sends a claimed delivery, unless its webhook is gone or disabled, or its claim too near its end to fit a request. */
  async #attempt(webhook: WebhookRow | null, delivery: DeliveryRow, claim: Date): Promise<PostResult> {
    if (!webhook) return { error: 'the webhook was deleted' };
    if (webhook.disabled) return { error: 'not sent: the webhook is disabled' };
    const budget = requestBudget(claim, this.#now());
    if (budget < MIN_REQUEST_MS) return { error: 'not sent: the claim on the delivery was nearly over' };
    return this.#post(webhook, delivery, budget);
  }

  /**
   * 410 Gone: the receiver says it is gone for good. In one transaction: this
   * delivery is given up (if its claim stands), so is every other pending one
   * of the webhook that no other node is sending (those give up when they find
   * it disabled), the webhook is disabled, and the trail says why, once.
   */
  async #disable(webhook: WebhookRow, id: string, claim: Date, at: Date): Promise<void> {
    await transaction(this.db, async (tx) => {
      const own = await store.releaseDelivery(tx, id, claim, { failedAt: at });
      const others = await store.failPendingDeliveries(tx, webhook.id, at);
      if (!(await store.disableWebhook(tx, webhook.id))) return;
      await recordAudit(tx, {
        action: WEBHOOK_DISABLED,
        actor: { type: 'system' },
        target: { type: 'webhook', id: webhook.id },
        details: { reason: 'the receiver answered 410 Gone', url: auditUrl(webhook.url), delivery: id, deliveriesGivenUp: others + (own ? 1 : 0) },
      });
    });
  }

  async #post(webhook: WebhookRow, delivery: DeliveryRow, budgetMs: number): Promise<PostResult> {
    let dispatcher: unknown;
    try {
      const secret = await openSecret(webhook, this.options.keyEncryptionKey);
      const url = new URL(webhook.url);
      if (!this.options.allowPrivateNetworkRequests) dispatcher = guardedDispatcher(url);
      // the fields in the spec's order (PostgreSQL's jsonb stores keys its own way)
      const { type, timestamp, data } = delivery.payload;
      const body = JSON.stringify({ type, timestamp, data });
      const seconds = Math.floor(this.#now() / 1000);
      return await withDeadline(budgetMs, this.#stopping.signal, async (signal) => {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Gatehouse-Webhooks',
            'webhook-id': delivery.id,
            'webhook-timestamp': String(seconds),
            'webhook-signature': signWebhook(secret, delivery.id, seconds, body),
          },
          body,
          redirect: 'manual',
          signal,
          ...(dispatcher ? { dispatcher } : {}),
        } as RequestInit);
        // the answer's body is not read (and its cancelling is under the same deadline)
        await res.body?.cancel().catch(() => {});
        return { status: res.status, retryAfter: res.headers.get('retry-after') };
      });
    } catch (err) {
      if (this.#stopping.signal.aborted) return { error: 'interrupted: the server stopped', interrupted: true };
      return { error: describeFailure(err) };
    }
  }
}
