import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { setMaxListeners } from 'node:events';
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Db, Tx } from '../storage/database.js';
import type { AttemptRow, DeliveryRow, NewDelivery, WebhookRow } from '../storage/webhooks.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { isLoopbackHttp } from '../common/loopback.js';
import { isStorable } from '../storage/text.js';
import { AUDIT_ACTIONS, onAuditEvent, onAuditEventHot, recordAudit, type AuditAction, type AuditEvent } from './audit.js';
import { invalid, notFound, type Problem } from './errors.js';

/**
 * Webhooks: audit events sent to receivers an admin registered, signed as
 * Standard Webhooks (https://www.standardwebhooks.com/) messages.
 *
 * - Outbox: a subscriber of the audit trail writes one `WebhookDelivery` per
 *   matching webhook and event in the event's own transaction, so an event is
 *   sent if and only if it was recorded. The delivery's id is the message's
 *   `webhook-id`, the same on every retry: receivers deduplicate by it.
 * - Worker: every node polls for due deliveries (about once a second, and at
 *   once after an event of its own), claims each with one conditional UPDATE
 *   that sets `lockedUntil` (two nodes never send one at once), POSTs it with
 *   a 10 s timeout and no redirects, and records the attempt. A 2xx delivers;
 *   410 Gone disables the webhook (audit `webhook.disabled`) and gives up its
 *   pending deliveries; anything else retries with backoff and jitter, for
 *   about a day, and no sooner than a 429's or 503's Retry-After. A sender
 *   that dies leaves its claim to expire (LOCK_MS), and the delivery is sent
 *   again.
 * - At most one attempt of a delivery is in flight anywhere: a request is
 *   aborted by a timer of our own well before its claim ends (CLAIM_MARGIN_MS),
 *   and a sender whose claim has lapsed records no retry or give-up over the
 *   claim of the node that took the delivery over.
 * - SSRF: as oidc-provider does for back-channel logout, a delivery to a
 *   special-use address (loopback, private, link-local, ...) is refused unless
 *   ALLOW_PRIVATE_NETWORK_REQUESTS is on. An IP-literal host is checked before
 *   connecting; a host name goes through a DNS lookup of our own in the
 *   connection's dispatcher that refuses the connection when any of its
 *   addresses is special-use, so the address checked is the one connected to
 *   (no rebinding between check and connect).
 */

/*
 * Storage (and Prisma's runtime behind it) is loaded when first used: every CLI
 * command imports this module, for the outbox, and `--help` should stay quick.
 */
const storage = () => import('../storage/webhooks.js');
const database = () => import('../storage/database.js');
const isRowNotFound = async (err: unknown) => err instanceof (await import('../storage/errors.js')).RowNotFoundError;

export type WebhookInfo = Omit<WebhookRow, 'secret' | 'secretEncrypted'> & { secretEncrypted: boolean };
export type AttemptInfo = Omit<AttemptRow, 'deliveryId'>;
export type DeliveryInfo = Omit<DeliveryRow, 'payload'> & { attemptLog: AttemptInfo[] };

const SECRET_PREFIX = 'whsec_';
/** bytes of a signing secret (the spec asks for 24 to 64) */
const SECRET_BYTES = 32;
const MAX_URL_LENGTH = 2048;

const info = ({ secret: _secret, ...row }: WebhookRow): WebhookInfo => row;

/** A new signing secret: "whsec_" and the base64 of random bytes. */
export const generateWebhookSecret = () => `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;

/** The secret's key bytes: the base64 after the prefix. */
const secretKey = (secret: string) => Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');

/** The `webhook-signature` header of a message: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body". */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/*
 * Secrets at rest: with KEY_ENCRYPTION_KEY, the key bytes as an `oct` JWK under
 * services/keys.ts' AES-256-GCM scheme ("v1.<iv>.<tag>.<ciphertext>"), the
 * same as private signing keys. keys.ts is loaded only when needed.
 */
async function sealSecret(secret: string, kek: Buffer | undefined): Promise<{ secret: string; secretEncrypted: boolean }> {
  if (!kek) return { secret, secretEncrypted: false };
  const { encryptJwk } = await import('./keys.js');
  return { secret: encryptJwk({ kty: 'oct', k: secretKey(secret).toString('base64url') }, kek), secretEncrypted: true };
}

async function openSecret(row: WebhookRow, kek: Buffer | undefined): Promise<string> {
  if (!row.secretEncrypted) return row.secret;
  if (!kek) throw new Error('the signing secret is encrypted: set KEY_ENCRYPTION_KEY');
  const { decryptJwk } = await import('./keys.js');
  let k: unknown;
  try {
    k = decryptJwk(row.secret, kek).k;
  } catch {
    throw new Error('the signing secret could not be decrypted: KEY_ENCRYPTION_KEY is wrong');
  }
  if (typeof k !== 'string') throw new Error('the stored signing secret is malformed');
  return `${SECRET_PREFIX}${Buffer.from(k, 'base64url').toString('base64')}`;
}

// ---------------------------------------------------------------------------
// Management

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
  const [store, { transaction }] = await Promise.all([storage(), database()]);
  const row = await transaction(db, async (tx) => {
    const created = await store.insertWebhook(tx, { id, url, events, ...sealed, disabled: false });
    await recordAudit(tx, { action: 'webhook.created', target: { type: 'webhook', id }, details: { url: auditUrl(url), events } });
    return created;
  });
  return { webhook: info(row), secret };
}

/** The URL as the audit trail keeps it: without its query (which may carry a receiver's key). */
const auditUrl = (url: string) => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

export async function listWebhooks(db: Db): Promise<WebhookInfo[]> {
  return (await (await storage()).listWebhooks(db)).map(info);
}

async function findWebhook(db: Db, id: string): Promise<WebhookRow> {
  const row = await (await storage()).findWebhook(db, id);
  if (!row) throw notFound(`no webhook with id ${id}`);
  return row;
}

/** A webhook with its most recent deliveries (newest first) and every attempt of each. */
export async function showWebhook(db: Db, id: string, limit = 20): Promise<WebhookInfo & { deliveries: DeliveryInfo[] }> {
  const row = await findWebhook(db, id);
  const deliveries = await (await storage()).recentDeliveries(db, id, limit);
  return {
    ...info(row),
    deliveries: deliveries.map(({ payload: _payload, attemptLog, ...d }) => ({ ...d, attemptLog: attemptLog.map(({ deliveryId: _id, ...a }) => a) })),
  };
}

/** Deletes a webhook and its outbox (nothing more is sent to it). */
export async function deleteWebhook(db: Db, id: string): Promise<void> {
  const row = await findWebhook(db, id);
  const [store, { transaction }] = await Promise.all([storage(), database()]);
  try {
    await transaction(db, async (tx) => {
      const { deliveries } = await store.deleteWebhookRow(tx, id);
      await recordAudit(tx, { action: 'webhook.deleted', target: { type: 'webhook', id }, details: { url: auditUrl(row.url), deliveries } });
    });
  } catch (err) {
    // a racing delete got there first
    if (await isRowNotFound(err)) throw notFound(`no webhook with id ${id}`);
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
  const [store, { transaction }] = await Promise.all([storage(), database()]);
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
    await (await storage()).updateWebhookSecret(db, id, sealed.secret, sealed.secretEncrypted);
  } catch (err) {
    if (await isRowNotFound(err)) throw notFound(`no webhook with id ${id}`);
    throw err;
  }
  await recordAudit(db, { action: 'webhook.secret_rotated', target: { type: 'webhook', id } });
  return { webhook: info(await findWebhook(db, id)), secret };
}

/** Retention: deletes delivered or given-up deliveries (and their attempts) older than `days`; how many. */
export async function purgeWebhookDeliveries(db: Db, days: number, now: Date = new Date()): Promise<number> {
  const before = new Date(now.getTime() - days * 86_400_000);
  const store = await storage();
  let total = 0;
  for (;;) {
    const n = await store.deleteFinishedDeliveriesBefore(db, before, 500);
    total += n;
    if (n < 500) return total;
  }
}

// ---------------------------------------------------------------------------
// Outbox

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

/** Workers of this process, nudged when an event of this process is queued. */
const workers = new Set<WebhookWorker>();

/** The rule of the outbox: one delivery per event and webhook that takes the event's type. */
function deliveriesFor(events: AuditEvent[], hooks: { id: string; events: string[] }[]): NewDelivery[] {
  return events.flatMap((event) =>
    hooks
      .filter((hook) => hook.events.includes('*') || hook.events.includes(event.action))
      .map((hook) => ({ id: `msg_${event.id}_${hook.id}`, webhookId: hook.id, eventId: event.id, eventType: event.action, payload: message(event), nextAttemptAt: event.at })));
}

/** After the events' transaction has (most likely) committed; the poll catches what this misses. */
function nudgeSoon(): void {
  if (workers.size) setTimeout(() => workers.forEach((w) => w.nudge()), 50).unref();
}

/** Queues each event for every enabled webhook that wants it, in the event's transaction. */
async function outbox(tx: Tx, events: AuditEvent[]): Promise<void> {
  const store = await storage();
  // one cheap query per batch of events: webhooks are few
  const hooks = await store.enabledWebhooks(tx);
  if (!hooks.length) return;
  const rows = deliveriesFor(events, hooks);
  if (!rows.length) return;
  await store.insertDeliveries(tx, rows);
  nudgeSoon();
}

/** The outbox rows of events recorded on the hot path (recordAuditHot writes them with the events). */
async function hotOutbox(hot: Pick<HotStatements, 'enabledWebhooks'>, events: AuditEvent[]): Promise<NewDelivery[]> {
  const rows = deliveriesFor(events, await hot.enabledWebhooks());
  if (rows.length) nudgeSoon();
  return rows;
}

/** Subscribes the outbox to the audit trail (once per process; calling again does nothing). */
export function installWebhookOutbox(): void {
  onAuditEvent(outbox);
  onAuditEventHot(hotOutbox);
}

// Every process that records events (the server, the CLI) imports this module.
installWebhookOutbox();

// ---------------------------------------------------------------------------
// SSRF

/**
 * Special-use addresses: the IANA IPv4 and IPv6 special-purpose address
 * registries (as oidc-provider refuses for its own outgoing requests,
 * lib/helpers/fetch_request.js), multicast, and the IPv6 forms that embed an
 * IPv4 address. BlockList matches IPv4-mapped IPv6 addresses (::ffff:0:0/96,
 * in any spelling) against the IPv4 rules; the other embeddings are refused
 * whole: IPv4-compatible (::/96, deprecated), IPv4-translated
 * (::ffff:0:0:0/96), NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16)
 * and Teredo (2001::/32, in 2001::/23).
 */
const SPECIAL_USE = (() => {
  const list = new BlockList();
  for (const [net, bits] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24], ['192.88.99.0', 24],
    ['192.168.0.0', 16], ['192.175.48.0', 24], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
    // multicast; reserved, with the limited broadcast address 255.255.255.255
    ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) list.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of [
    // ::/96 holds the unspecified address ::, the loopback ::1 and the IPv4-compatible addresses
    ['::', 96], ['::ffff:0:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['100:0:0:1::', 64], ['2001::', 23],
    ['2001:db8::', 32], ['2002::', 16], ['2620:4f:8000::', 48], ['3fff::', 20], ['5f00::', 16], ['fc00::', 7], ['fe80::', 10],
    // site-local (deprecated, RFC 3879) and multicast
    ['fec0::', 10], ['ff00::', 8],
  ] as const) list.addSubnet(net, bits, 'ipv6');
  return list;
})();

/** Whether `address` (an IP literal; anything else is not) is special-use. A zone (fe80::1%eth0) is ignored. */
export function isSpecialUseAddress(address: string): boolean {
  const ip = address.replace(/%.*$/, '');
  const family = isIP(ip);
  if (!family) return false;
  return SPECIAL_USE.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** Whether deliveries to `url` need ALLOW_PRIVATE_NETWORK_REQUESTS, as far as its host alone says (names are resolved when sending). */
export function isPrivateNetworkUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || isSpecialUseAddress(host);
}

class SpecialUseAddressError extends Error {
  readonly code = 'ESPECIALUSE';
  constructor(host: string, address: string) {
    super(host === address ? `${address} is a special-use address (set ALLOW_PRIVATE_NETWORK_REQUESTS=true to allow it)` : `${host} resolves to the special-use address ${address} (set ALLOW_PRIVATE_NETWORK_REQUESTS=true to allow it)`);
    this.name = 'SpecialUseAddressError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup, refusing host names with any special-use address. */
function safeLookup(hostname: string, options: object | number, callback: LookupCallback): void {
  const opts = typeof options === 'number' ? { family: options } : options;
  dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isSpecialUseAddress(a.address));
    if (bad) return callback(new SpecialUseAddressError(hostname, bad.address), []);
    if ((opts as { all?: boolean }).all) return callback(null, addresses);
    const [first] = addresses;
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

/**
 * The dispatcher for deliveries without ALLOW_PRIVATE_NETWORK_REQUESTS: an
 * undici Agent (the class behind Node's fetch, found as oidc-provider finds
 * it) whose connections resolve host names through safeLookup. Fails closed:
 * without one, nothing is sent.
 */
let ssrfDispatcher: unknown;
function protectedDispatcher(): unknown {
  if (ssrfDispatcher) return ssrfDispatcher;
  // touching a fetch global loads Node's undici, which installs its global dispatcher
  void Response;
  const globals = globalThis as unknown as Record<symbol, { constructor: new (options: object) => unknown } | undefined>;
  const Agent = (globals[Symbol.for('undici.globalDispatcher.2')] ?? globals[Symbol.for('undici.globalDispatcher.1')])?.constructor;
  if (!Agent) throw new Error('cannot protect outgoing requests from special-use addresses on this Node version: not sent');
  ssrfDispatcher = new Agent({ connect: { lookup: safeLookup } });
  return ssrfDispatcher;
}

// ---------------------------------------------------------------------------
// Delivery

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
    workers.add(this);
    this.#timer = setInterval(() => this.nudge(), this.options.pollMs ?? POLL_MS);
    this.#timer.unref();
    this.nudge();
  }

  /** Stops polling, interrupts requests in flight (their deliveries are due again at once) and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    workers.delete(this);
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
      const store = await storage();
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
      const store = await storage();
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
    const [store, { transaction }] = await Promise.all([storage(), database()]);
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
      if (!this.options.allowPrivateNetworkRequests) {
        const host = url.hostname.replace(/^\[|\]$/g, '');
        if (isSpecialUseAddress(host)) throw new SpecialUseAddressError(host, host);
        dispatcher = protectedDispatcher();
      }
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
