import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createTestDatabase, databaseKinds, migratedDatabase, type Kind, type TestDatabase } from '../support/databases.js';
import { ROOT, runCli, startServer, type RunningServer } from '../support/processes.js';
import { createClient, eventually } from '../support/gatehouse.js';
import { verifyStandardWebhook, WebhookReceiver } from '../support/webhook-receiver.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { recordAudit, withActor } from '../../src/services/audit.js';
import { createWebhook, enableWebhook, redeliver } from '../../src/services/webhooks/registry.js';
import { CLAIM_MARGIN_MS, GIVE_UP_AFTER_MS, LOCK_MS, nextAttempt, TIMEOUT_MS, WebhookWorker } from '../../src/services/webhooks/delivery.js';
import { installWebhookOutbox } from '../../src/services/webhooks/outbox.js';
import { createLogger } from '../../src/logger.js';

/**
 * Webhooks end to end: the real CLI makes webhooks and events, real server
 * processes send them, and a receiver in this test verifies every Standard
 * Webhooks signature on its own. Events are written to an outbox with the
 * audit event, so a receiver that is down, or a server killed mid-delivery,
 * loses nothing; the webhook-id lets the receiver count each message once.
 */

const SUBSCRIBED = ['client.created', 'client.deleted'];

// events this test records itself (recordAudit) queue their deliveries, as in the server and the CLI
installWebhookOutbox();

describe('the test receiver verifies signatures as the spec says', () => {
  it('accepts a correct signature and refuses any change', () => {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const key = Buffer.from(secret.slice(6), 'base64');
    const now = Math.floor(Date.now() / 1000);
    const body = '{"type":"client.created"}';
    const sign = (content: string, k = key) => `v1,${createHmac('sha256', k).update(content).digest('base64')}`;
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(now), 'webhook-signature': sign(`msg_1.${now}.${body}`) };
    expect(verifyStandardWebhook(secret, headers, body)).toBe(true);
    // one of several signatures (a rotation) is enough
    expect(verifyStandardWebhook(secret, { ...headers, 'webhook-signature': `v1,AAAA ${headers['webhook-signature']}` }, body)).toBe(true);
    expect(verifyStandardWebhook(secret, headers, `${body} `)).toBe(false);
    expect(verifyStandardWebhook(secret, { ...headers, 'webhook-id': 'msg_2' }, body)).toBe(false);
    expect(verifyStandardWebhook(secret, { ...headers, 'webhook-signature': sign(`msg_1.${now}.${body}`, randomBytes(24)) }, body)).toBe(false);
    expect(verifyStandardWebhook(secret, headers, body, now + 600)).toBe(false);
  });
});

describe('retries', () => {
  it('backs off 1 s, 5 s, 30 s, ... then hourly, and gives up after a day', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    const t = at.getTime();
    const mid = () => 0.5;
    expect(nextAttempt(1, at, t, mid)!.getTime() - t).toBe(1000);
    expect(nextAttempt(2, at, t, mid)!.getTime() - t).toBe(5000);
    expect(nextAttempt(3, at, t, mid)!.getTime() - t).toBe(30_000);
    expect(nextAttempt(20, at, t, mid)!.getTime() - t).toBe(3_600_000);
    expect(nextAttempt(1, at, t, () => 0)!.getTime() - t).toBe(800);
    expect(nextAttempt(1, at, t, () => 1)!.getTime() - t).toBe(1200);
    expect(nextAttempt(20, at, t + 22 * 3_600_000, mid)).not.toBeNull();
    expect(nextAttempt(20, at, t + 23.5 * 3_600_000, mid)).toBeNull();
  });
});

describe.each(databaseKinds())('webhooks on %s', (kind: Kind) => {
  let db: TestDatabase;
  let database: Database;
  const servers: RunningServer[] = [];
  const receiver = new WebhookReceiver();
  const kek = randomBytes(32).toString('base64url');
  const cli = (args: string[]) => runCli(args, db.url, { env: { KEY_ENCRYPTION_KEY: kek } });
  const env = () => ({ DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: kek, ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' });
  let webhookId = '';

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await receiver.listen();
    servers.push(await startServer(env()));
    database = await openDatabase({ url: db.url, kind }, { poolSize: 2 });
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await database?.close();
    await receiver.close();
    await db?.drop();
  });

  /** The delivery (and its attempts) of the event about `target`. */
  async function deliveryAbout(target: string) {
    const events = await database.prisma.auditEvent.findMany({ where: { targetId: target, action: { in: SUBSCRIBED } } });
    const rows = await database.prisma.webhookDelivery.findMany({ where: { eventId: { in: events.map((e) => e.id) } } });
    const attempts = await database.prisma.webhookAttempt.findMany({ where: { deliveryId: { in: rows.map((r) => r.id) } }, orderBy: { at: 'asc' } });
    return { rows, attempts };
  }

  const acknowledgedAbout = (target: string) => receiver.acknowledged().filter((m) => m.payload.data.targetId === target);

  it('refuses bad input with every problem, writing nothing', () => {
    const both = cli(['webhooks', 'create', '--url', 'ftp://example.com/hook', '--event', 'client.created', '--event', 'client.exploded']);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--url: must be https');
    expect(both.stderr).toContain('--event: unknown event client.exploded');
    const none = cli(['webhooks', 'create', '--url', 'https://example.com/hook']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('--event: give at least one event');
    const plain = cli(['webhooks', 'create', '--url', 'http://example.com/hook', '--event', '*']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('--url: must be https (http only for localhost');
    const garbage = cli(['webhooks', 'create', '--url', 'not a url', '--event', '*']);
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toContain('--url: not an absolute URL');
    const missing = cli(['webhooks', 'show', 'wh_nothere']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no webhook with id wh_nothere');

    expect(cli(['webhooks', 'list', '--json']).json()).toEqual([]);
    expect(cli(['audit', 'list', '--action', 'webhook.created', '--json']).json()).toEqual([]);
  });

  it('sends every subscribed event, signed, exactly once, through a receiver outage and a killed server', async () => {
    // --- a webhook, made with the CLI; its secret is shown once and stored encrypted
    const created = cli(['webhooks', 'create', '--url', receiver.url, ...SUBSCRIBED.flatMap((e) => ['--event', e]), '--json']);
    expect(created.code).toBe(0);
    const webhook = created.json();
    webhookId = webhook.id;
    receiver.secret = webhook.secret;
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    const keyBytes = Buffer.from(webhook.secret.slice(6), 'base64').length;
    expect(keyBytes).toBeGreaterThanOrEqual(24);
    expect(keyBytes).toBeLessThanOrEqual(64);
    expect(webhook.events).toEqual(SUBSCRIBED);
    const row = await database.prisma.webhook.findUniqueOrThrow({ where: { id: webhookId } });
    expect(row.secretEncrypted).toBe(true);
    expect(row.secret).not.toContain(webhook.secret.slice(6));
    expect(cli(['webhooks', 'list', '--json']).stdout).not.toContain(webhook.secret.slice(6));
    expect(cli(['audit', 'list', '--action', 'webhook.created', '--json']).json()).toHaveLength(1);

    // --- up: an event arrives within seconds, signed; an event not subscribed to does not
    const a = createClient(db.url, ['--name', 'A']).clientId;
    expect(runCli(['resources', 'create', '--identifier', 'https://api.example.com', '--json'], db.url).code).toBe(0);
    await eventually(async () => acknowledgedAbout(a).length > 0, 'the first event', 10_000);
    const [first] = acknowledgedAbout(a);
    expect(first.valid).toBe(true);
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.payload.type).toBe('client.created');
    expect(first.payload.data).toMatchObject({ action: 'client.created', targetType: 'client', targetId: a, actorType: 'cli', outcome: 'success' });
    expect(first.id).toBe(`msg_${first.payload.data.id}_${webhookId}`);
    expect(Math.abs(Number(first.timestamp) - Date.now() / 1000)).toBeLessThan(30);
    expect(Date.parse(first.payload.timestamp)).toBe(Date.parse(first.payload.data.at));

    // --- down: 503 for two events, then a closed port for a third
    receiver.mode = 'unavailable';
    const b = createClient(db.url, ['--name', 'B']).clientId;
    const c = createClient(db.url, ['--name', 'C']).clientId;
    await eventually(async () => receiver.about(b).length > 0 && receiver.about(c).length > 0, 'attempts while unavailable', 10_000);
    await receiver.close();
    const d = createClient(db.url, ['--name', 'D']).clientId;
    await eventually(async () => (await deliveryAbout(d)).attempts.some((t) => t.error !== null), 'an attempt at the closed port', 10_000);
    expect(acknowledgedAbout(b)).toHaveLength(0);
    expect(acknowledgedAbout(d)).toHaveLength(0);
    // --- up again: the retries arrive
    receiver.mode = 'ok';
    await receiver.listen();
    await eventually(async () => [b, c, d].every((t) => acknowledgedAbout(t).length > 0), 'the events of the outage', 45_000);
    // the sender records an attempt after the receiver has answered: wait for the records too
    await eventually(async () => (await Promise.all([b, c, d].map(deliveryAbout))).every(({ attempts }) => attempts.some((t) => t.status === 204)), 'the deliveries recorded', 10_000);
    const bAttempts = (await deliveryAbout(b)).attempts;
    expect(bAttempts[0].status).toBe(503);
    expect(bAttempts.at(-1)!.status).toBe(204);
    const dAttempts = (await deliveryAbout(d)).attempts;
    expect(dAttempts[0].error).toMatch(/ECONNREFUSED/);
    expect(dAttempts.at(-1)!.status).toBe(204);

    // --- killed mid-delivery: the receiver holds the request, the server dies with SIGKILL
    receiver.mode = 'hold';
    const e = createClient(db.url, ['--name', 'E']).clientId;
    await eventually(async () => receiver.about(e).length > 0, 'the held request', 10_000);
    const killed = servers.shift()!;
    const exited = once(killed.process, 'exit');
    killed.process.kill('SIGKILL');
    await exited;
    const claimedUntil = (await deliveryAbout(e)).rows[0].lockedUntil;
    expect(claimedUntil).not.toBeNull();
    // an event while no server runs waits in the outbox
    const f = createClient(db.url, ['--name', 'F']).clientId;
    receiver.mode = 'ok';
    servers.push(await startServer(env()));
    await eventually(async () => acknowledgedAbout(f).length > 0, 'the event recorded while no server ran', 10_000);
    await eventually(async () => acknowledgedAbout(e).length > 0, 'the event whose sender was killed', LOCK_MS + 15_000);
    // sent again only once the dead sender's claim had passed
    const eAck = acknowledgedAbout(e)[0];
    expect(Number(eAck.timestamp) * 1000).toBeGreaterThanOrEqual(claimedUntil!.getTime() - 1000);
    const eDelivery = await deliveryAbout(e);
    expect(eDelivery.rows[0].attempts).toBe(2);
    expect(eDelivery.attempts.map((t) => t.status)).toEqual([204]);

    // --- and on: a deletion
    expect(runCli(['clients', 'delete', a], db.url).code).toBe(0);
    await eventually(async () => acknowledgedAbout(a).some((m) => m.payload.type === 'client.deleted'), 'the deletion', 10_000);

    // --- every event arrived, none twice, all signed, nothing unsubscribed
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.messages.every((m) => m.valid)).toBe(true);
    const acked = receiver.acknowledged();
    const counts = new Map<string, number>();
    for (const m of acked) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const events = cli(['audit', 'list', '--json']).json() as { id: string; action: string }[];
    // what happened after the webhook existed (a server's start records its built-in clients before)
    const since = events.find((ev) => ev.action === 'webhook.created')!.id;
    const expected = events.filter((ev) => SUBSCRIBED.includes(ev.action) && ev.id > since).map((ev) => ev.id).sort();
    expect(expected).toHaveLength(7);
    expect([...new Set(acked.map((m) => m.payload.data.id))].sort()).toEqual(expected);
    expect(acked.every((m) => m.id === `msg_${m.payload.data.id}_${webhookId}`)).toBe(true);
    expect(events.some((ev) => ev.action === 'api.created')).toBe(true);
    expect(receiver.messages.some((m) => m.payload.type === 'api.created')).toBe(false);
    const outbox = await database.prisma.webhookDelivery.findMany();
    expect(outbox).toHaveLength(7);
    expect(outbox.every((r) => r.deliveredAt !== null && r.failedAt === null)).toBe(true);

    // --- the CLI shows deliveries and their attempts
    const shown = cli(['webhooks', 'show', webhookId, '--json']);
    expect(shown.code).toBe(0);
    const details = shown.json();
    expect(details.secret).toBeUndefined();
    expect(details.deliveries).toHaveLength(7);
    const shownB = details.deliveries.find((dl: { id: string }) => dl.id === acknowledgedAbout(b)[0].id);
    expect(shownB.attemptLog.map((t: { status: number | null }) => t.status)).toContain(503);
    expect(cli(['webhooks', 'show', webhookId]).stdout).toMatch(/503/);
  }, 180_000);

  it('sends a delivery again from the CLI: the same message, under the same webhook-id', async () => {
    expect(webhookId).not.toBe('');
    const sent = receiver.acknowledged().find((m) => m.payload.type === 'client.created')!;
    const again = cli(['webhooks', 'redeliver', webhookId, sent.id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`queued again:\n  ${sent.id}  client.created  pending, next attempt`);
    await eventually(async () => receiver.acknowledged().filter((m) => m.id === sent.id).length === 2, 'the message sent again', 10_000);
    const [first, second] = receiver.acknowledged().filter((m) => m.id === sent.id);
    expect(second.valid).toBe(true);
    expect(second.body).toBe(first.body);
    expect(cli(['audit', 'list', '--action', 'webhook.redelivered', '--json']).json()).toMatchObject([{ actorType: 'cli', targetId: webhookId, details: { delivery: sent.id } }]);

    const missing = cli(['webhooks', 'redeliver', webhookId, 'msg_nothere']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`webhook ${webhookId} has no delivery msg_nothere`);
    const short = cli(['webhooks', 'redeliver', webhookId]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('expected 2 arguments: <webhook-id> <delivery-id>');
  }, 30_000);

  it('rotates the secret (the old one no longer verifies) and deletes the webhook with its outbox', async () => {
    expect(webhookId).not.toBe('');
    const old = receiver.secret;
    const rotated = cli(['webhooks', 'rotate-secret', webhookId, '--json']);
    expect(rotated.code).toBe(0);
    const secret = rotated.json().secret as string;
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(old);
    receiver.secret = secret;
    const before = receiver.messages.length;
    const g = createClient(db.url, ['--name', 'G']).clientId;
    await eventually(async () => acknowledgedAbout(g).length > 0, 'an event signed with the new secret', 10_000);
    const m = receiver.about(g)[0];
    expect(verifyStandardWebhook(secret, m.headers, m.body)).toBe(true);
    expect(verifyStandardWebhook(old, m.headers, m.body)).toBe(false);

    const deleted = cli(['webhooks', 'delete', webhookId]);
    expect(deleted.code).toBe(0);
    expect(cli(['webhooks', 'list', '--json']).json()).toEqual([]);
    expect(await database.prisma.webhookDelivery.count()).toBe(0);
    expect(await database.prisma.webhookAttempt.count()).toBe(0);
    expect(cli(['audit', 'list', '--action', 'webhook.deleted', '--json']).json()).toHaveLength(1);
    createClient(db.url, ['--name', 'H']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.messages.length).toBe(before + 1);
  }, 60_000);
});

describe.each(databaseKinds())('a server without ALLOW_PRIVATE_NETWORK_REQUESTS on %s', (kind: Kind) => {
  let db: TestDatabase;
  let database: Database;
  let server: RunningServer;
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await receiver.listen();
    server = await startServer({ DATABASE_URL: db.url });
    database = await openDatabase({ url: db.url, kind }, { poolSize: 2 });
  });
  afterAll(async () => {
    await server?.stop();
    await database?.close();
    await receiver.close();
    await db?.drop();
  });

  it('refuses to send to special-use addresses, named by address or by a host name that resolves to one', async () => {
    const urls = [`http://127.0.0.1:${receiver.port}/a`, `http://localhost:${receiver.port}/b`, `http://[::1]:${receiver.port}/c`];
    for (const url of urls) {
      const r = runCli(['webhooks', 'create', '--url', url, '--event', 'client.created'], db.url);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('refuse to send to it unless ALLOW_PRIVATE_NETWORK_REQUESTS=true');
    }
    createClient(db.url, ['--name', 'ssrf']);
    const attempts = () => database.prisma.webhookAttempt.findMany();
    await eventually(async () => (await attempts()).length >= 3, 'an attempt for each', 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.messages).toHaveLength(0);
    const errors = (await attempts()).map((a) => `${a.status} ${a.error}`).join('\n');
    expect(errors).toMatch(/^null 127\.0\.0\.1 is a special-use address/m);
    expect(errors).toMatch(/^null ::1 is a special-use address/m);
    expect(errors).toMatch(/^null localhost resolves to the special-use address (127\.0\.0\.1|::1)/m);
    expect(errors).not.toMatch(/^\d/m);
    const deliveries = await database.prisma.webhookDelivery.findMany();
    expect(deliveries).toHaveLength(3);
    expect(deliveries.every((d) => d.deliveredAt === null && d.failedAt === null)).toBe(true);
  });
});

describe.each(databaseKinds())('the delivery worker on %s', (kind: Kind) => {
  let database: Database;
  let close: () => Promise<void>;
  const receiver = new WebhookReceiver();
  const logger = createLogger('silent');

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
    await receiver.listen();
  });
  afterAll(async () => {
    await receiver.close();
    await close?.();
  });

  it('lets one of several racing nodes claim each delivery, signs only with the key that opens the secret, and keeps to ALLOW_PRIVATE_NETWORK_REQUESTS', async () => {
    const db = database.prisma;
    const kek = randomBytes(32);
    const { secret } = await createWebhook(db, { url: `http://127.0.0.1:${receiver.port}/race`, events: ['*'] }, kek);
    expect((await db.webhook.findFirstOrThrow()).secretEncrypted).toBe(true);
    receiver.secret = secret;
    for (let i = 0; i < 12; i++) await recordAudit(db, { action: 'client.updated', target: { type: 'client', id: `race-${i}` }, actor: { type: 'cli' } });
    // 13 messages: the webhook's own creation, and the 12 updates
    expect(await db.webhookDelivery.count()).toBe(13);

    // a node that may not reach private addresses refuses before connecting
    await new WebhookWorker(db, { logger, keyEncryptionKey: kek, allowPrivateNetworkRequests: false }).runOnce();
    expect(receiver.messages).toHaveLength(0);
    let attempts = await db.webhookAttempt.findMany();
    expect(attempts).toHaveLength(13);
    expect(attempts.every((a) => a.status === null && /^127\.0\.0\.1 is a special-use address/.test(a.error ?? ''))).toBe(true);
    const pending = await db.webhookDelivery.findMany();
    expect(pending.every((p) => p.deliveredAt === null && p.failedAt === null && p.lockedUntil === null && p.attempts === 1 && p.nextAttemptAt.getTime() > Date.now())).toBe(true);

    // a node without the key cannot sign, and says so (once the retry is due)
    const later = (ms: number) => () => Date.now() + ms;
    await new WebhookWorker(db, { logger, keyEncryptionKey: undefined, allowPrivateNetworkRequests: true, now: later(10_000) }).runOnce();
    expect(receiver.messages).toHaveLength(0);
    attempts = await db.webhookAttempt.findMany({ where: { error: { contains: 'encrypted: set KEY_ENCRYPTION_KEY' } } });
    expect(attempts).toHaveLength(13);

    // three nodes with the key, at once, a few times over: each message once
    const nodes = [1, 2, 3].map(() => new WebhookWorker(db, { logger, keyEncryptionKey: kek, allowPrivateNetworkRequests: true, now: later(60_000) }));
    for (let round = 0; round < 3; round++) await Promise.all(nodes.map((n) => n.runOnce()));
    expect(receiver.messages).toHaveLength(13);
    expect(receiver.messages.every((m) => m.valid)).toBe(true);
    expect(new Set(receiver.messages.map((m) => m.id)).size).toBe(13);
    const rows = await db.webhookDelivery.findMany();
    expect(rows.every((r) => r.deliveredAt !== null && r.attempts === 3)).toBe(true);
  });
});

describe.each(databaseKinds())('what a delivery attempt leads to, on %s', (kind: Kind) => {
  let testDb: TestDatabase;
  let database: Database;
  let close: () => Promise<void>;
  const receiver = new WebhookReceiver();
  const logger = createLogger('silent');
  const worker = (now?: () => number) => new WebhookWorker(database.prisma, { logger, keyEncryptionKey: undefined, allowPrivateNetworkRequests: true, now });

  beforeAll(async () => {
    ({ testDb, database, close } = await migratedDatabase(kind));
    await receiver.listen();
  });
  beforeEach(async () => {
    const db = database.prisma;
    await db.webhookAttempt.deleteMany();
    await db.webhookDelivery.deleteMany();
    await db.webhook.deleteMany();
    receiver.messages.length = 0;
    receiver.mode = 'ok';
    receiver.retryAfter = undefined;
  });
  afterAll(async () => {
    await receiver.close();
    await close?.();
  });

  /** A webhook on the receiver for client.updated, and its signing secret. */
  async function hook(path = 'hook', url = `http://127.0.0.1:${receiver.port}/${path}`) {
    const { webhook, secret } = await createWebhook(database.prisma, { url, events: ['client.updated'] }, undefined);
    receiver.secret = secret;
    return { id: webhook.id, secret };
  }

  /** Records a client.updated event about `target` (at `at`: the delivery is due then); its deliveries. */
  async function event(target: string, at?: Date) {
    const recorded = await recordAudit(database.prisma, { action: 'client.updated', target: { type: 'client', id: target }, actor: { type: 'cli' } }, at);
    return database.prisma.webhookDelivery.findMany({ where: { eventId: recorded.id } });
  }

  async function deliveryOf(webhookId: string, target: string) {
    const { id: eventId } = await database.prisma.auditEvent.findFirstOrThrow({ where: { targetId: target, action: 'client.updated' } });
    return database.prisma.webhookDelivery.findFirstOrThrow({ where: { webhookId, eventId } });
  }
  const attemptsOf = (deliveryId: string) => database.prisma.webhookAttempt.findMany({ where: { deliveryId }, orderBy: { at: 'asc' } });

  it('410 Gone disables the webhook, in the audit trail without its secret, gives up its pending deliveries and sends nothing more', async () => {
    const db = database.prisma;
    const gone = await hook();
    // another webhook, whose receiver is down: not affected
    const other = await hook('other', 'http://127.0.0.1:9/down');
    receiver.mode = 'gone';
    await event('now');
    // two more events whose deliveries are not due yet
    const later = new Date(Date.now() + 3_600_000);
    await event('later-1', later);
    await event('later-2', later);

    await worker().runOnce();
    expect(receiver.messages.map((m) => m.payload.data.targetId)).toEqual(['now']);
    expect(receiver.messages[0].answered).toBe(410);
    const row = await db.webhook.findUniqueOrThrow({ where: { id: gone.id } });
    expect(row.disabled).toBe(true);
    expect(row.secret).toBe(gone.secret);
    const deliveries = await db.webhookDelivery.findMany({ where: { webhookId: gone.id } });
    expect(deliveries).toHaveLength(3);
    expect(deliveries.every((d) => d.failedAt !== null && d.deliveredAt === null && d.lockedUntil === null)).toBe(true);
    expect((await attemptsOf((await deliveryOf(gone.id, 'now')).id)).map((a) => a.status)).toEqual([410]);
    // the other webhook keeps trying
    const others = await db.webhookDelivery.findMany({ where: { webhookId: other.id } });
    expect(others).toHaveLength(3);
    expect(others.every((d) => d.failedAt === null && d.deliveredAt === null)).toBe(true);
    expect((await db.webhook.findUniqueOrThrow({ where: { id: other.id } })).disabled).toBe(false);

    // once in the trail, as the system, with the reason and never the secret
    const trail = await db.auditEvent.findMany({ where: { action: 'webhook.disabled' } });
    expect(trail).toHaveLength(1);
    expect(trail[0]).toMatchObject({ actorType: 'system', actorId: null, targetType: 'webhook', targetId: gone.id, outcome: 'success' });
    expect(trail[0].details).toMatchObject({ reason: 'the receiver answered 410 Gone', url: `http://127.0.0.1:${receiver.port}/hook`, deliveriesGivenUp: 3 });
    expect(JSON.stringify(trail[0])).not.toContain(gone.secret.slice(6));

    // nothing more: not the given-up deliveries when they would have been due, not new events
    receiver.mode = 'ok';
    await worker(() => Date.now() + 2 * 3_600_000).runOnce();
    expect(await event('after')).toHaveLength(1);
    await worker(() => Date.now() + 2 * 3_600_000).runOnce();
    expect(receiver.messages).toHaveLength(1);
    // a delivery queued by a transaction that raced the disabling is given up unsent
    const { insertDeliveries } = await import('../../src/storage/webhooks.js');
    await insertDeliveries(db, [{ id: 'msg_raced', webhookId: gone.id, eventId: 'raced', eventType: 'client.updated', payload: { type: 'client.updated', timestamp: new Date().toISOString(), data: {} }, nextAttemptAt: new Date() }]);
    await worker().runOnce();
    expect(receiver.messages).toHaveLength(1);
    expect((await db.webhookDelivery.findUniqueOrThrow({ where: { id: 'msg_raced' } })).failedAt).not.toBeNull();
    expect((await attemptsOf('msg_raced')).map((a) => a.error)).toEqual(['not sent: the webhook is disabled']);
    expect(await db.auditEvent.count({ where: { action: 'webhook.disabled' } })).toBe(1);

    // an admin enables it again: events from then on go out, what was given up stays given up
    expect((await enableWebhook(db, gone.id)).disabled).toBe(false);
    expect(await db.auditEvent.count({ where: { action: 'webhook.enabled', targetId: gone.id } })).toBe(1);
    await event('back');
    await worker().runOnce();
    expect(receiver.messages.map((m) => m.payload.data.targetId)).toEqual(['now', 'back']);
    // enabling an enabled webhook changes nothing and records nothing
    await enableWebhook(db, gone.id);
    expect(await db.auditEvent.count({ where: { action: 'webhook.enabled' } })).toBe(1);
  });

  it('sends a delivery again on request: a given-up one goes out at once under the same webhook-id, its attempts kept, audited', async () => {
    const db = database.prisma;
    // another webhook first: the receiver verifies with the secret of the last one made
    const other = await hook('other');
    const { id } = await hook();
    receiver.mode = 'unavailable';
    const delivery = (await event('again')).find((d) => d.webhookId === id)!;
    // attempted a day after its event: given up
    await worker(() => Date.now() + GIVE_UP_AFTER_MS + 60_000).runOnce();
    expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toMatchObject({ attempts: 1, failedAt: expect.any(Date), deliveredAt: null });

    // unknown, or another webhook's: not found
    await expect(redeliver(db, id, 'msg_nothere')).rejects.toMatchObject({ code: 'not_found' });
    await expect(redeliver(db, other.id, delivery.id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(redeliver(db, 'wh_nothere', delivery.id)).rejects.toMatchObject({ code: 'not_found' });
    // while a sender holds it, or its webhook is disabled: refused, unchanged
    await db.webhookDelivery.update({ where: { id: delivery.id }, data: { lockedUntil: new Date(Date.now() + LOCK_MS) } });
    await expect(redeliver(db, id, delivery.id)).rejects.toMatchObject({ code: 'conflict' });
    await db.webhookDelivery.update({ where: { id: delivery.id }, data: { lockedUntil: null } });
    await db.webhook.update({ where: { id }, data: { disabled: true } });
    await expect(redeliver(db, id, delivery.id)).rejects.toMatchObject({ code: 'conflict' });
    await db.webhook.update({ where: { id }, data: { disabled: false } });
    expect(await db.auditEvent.count({ where: { action: 'webhook.redelivered' } })).toBe(0);

    const before = Date.now();
    const queued = await withActor({ type: 'cli' }, () => redeliver(db, id, delivery.id));
    expect(queued).toMatchObject({ id: delivery.id, webhookId: id, attempts: 1, deliveredAt: null, failedAt: null, lockedUntil: null });
    expect(queued.nextAttemptAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(queued.nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(queued.attemptLog.map((a) => a.status)).toEqual([503]);
    expect(queued).not.toHaveProperty('payload');

    receiver.mode = 'ok';
    await worker().runOnce();
    const sent = receiver.messages.filter((m) => m.id === delivery.id);
    expect(sent.map((m) => m.answered)).toEqual([503, 204]);
    expect(sent[1].valid).toBe(true);
    expect(sent[1].body).toBe(sent[0].body);
    expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toMatchObject({ attempts: 2, deliveredAt: expect.any(Date), failedAt: null });
    // (the first attempt's clock was a day ahead)
    expect((await attemptsOf(delivery.id)).map((a) => a.status).sort()).toEqual([204, 503]);
    const trail = await db.auditEvent.findMany({ where: { action: 'webhook.redelivered' } });
    expect(trail).toHaveLength(1);
    expect(trail[0]).toMatchObject({ actorType: 'cli', targetType: 'webhook', targetId: id, details: { delivery: delivery.id, eventType: 'client.updated', url: `http://127.0.0.1:${receiver.port}/hook` } });
  });

  it('429 and 503 wait for Retry-After (seconds or an HTTP-date, at most an hour, never past the give-up), otherwise back off', async () => {
    const db = database.prisma;
    const { id } = await hook();
    /** One event answered in `mode` with `retryAfter`, sent by a worker at `now`: ms from the attempt's end to the next, or null when given up. */
    const wait = async (target: string, mode: 'unavailable' | 'busy', retryAfter: string | undefined, now?: () => number) => {
      receiver.mode = mode;
      receiver.retryAfter = retryAfter;
      await event(target);
      await worker(now).runOnce();
      const delivery = await deliveryOf(id, target);
      const [attempt] = await attemptsOf(delivery.id);
      expect(attempt.status).toBe(mode === 'busy' ? 429 : 503);
      expect(delivery.lockedUntil).toBeNull();
      return delivery.failedAt ? null : delivery.nextAttemptAt.getTime() - (attempt.at.getTime() + attempt.durationMs);
    };
    expect(await wait('seconds', 'unavailable', '120')).toBe(120_000);
    const date = await wait('date', 'busy', new Date(Date.now() + 600_000).toUTCString());
    expect(date).toBeGreaterThan(598_000);
    expect(date).toBeLessThanOrEqual(600_000);
    expect(await wait('capped', 'unavailable', '86400')).toBe(3_600_000);
    // none, or one that says nothing: the backoff after a first attempt (1 s ± 20%)
    for (const [target, value] of [['none', undefined], ['malformed', 'soon']] as const) {
      const ms = await wait(target, 'busy', value);
      expect(ms).toBeGreaterThanOrEqual(800);
      expect(ms).toBeLessThanOrEqual(1200);
    }
    // 23.5 h after the event, a wait of an hour would go past the day: given up
    expect(await wait('too-late', 'unavailable', '3600', () => Date.now() + 23.5 * 3_600_000)).toBeNull();
    expect(receiver.messages).toHaveLength(6 + 5);
  });

  it('a sender whose claim has passed to another node writes no result over that claim', async () => {
    const db = database.prisma;
    const store = await import('../../src/storage/webhooks.js');
    const { id: webhookId } = await hook();
    const [{ id }] = await event('claimed');
    const t = Date.now();
    const first = new Date(t + LOCK_MS);
    expect(await store.claimDelivery(db, id, new Date(t), first)).toBe(true);
    // the first claim is live: no one else takes it, and giving up the webhook's deliveries leaves it
    expect(await store.claimDelivery(db, id, new Date(t + 1000), new Date(t + 1000 + LOCK_MS))).toBe(false);
    expect(await store.failPendingDeliveries(db, webhookId, new Date(t + 1000))).toBe(0);
    // it lapses, and another node claims it
    const second = new Date(t + LOCK_MS + 1 + LOCK_MS);
    expect(await store.claimDelivery(db, id, new Date(t + LOCK_MS + 1), second)).toBe(true);
    expect(await store.releaseDelivery(db, id, first, { nextAttemptAt: new Date(t + 2000) })).toBe(false);
    expect(await store.releaseDelivery(db, id, first, { failedAt: new Date(t + 2000) })).toBe(false);
    expect(await store.failPendingDeliveries(db, webhookId, new Date(t + LOCK_MS + 2))).toBe(0);
    let row = await db.webhookDelivery.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ lockedUntil: second, failedAt: null, attempts: 2 });
    expect(row.nextAttemptAt.getTime()).toBeLessThanOrEqual(t);
    // the holder's own result is written
    expect(await store.releaseDelivery(db, id, second, { nextAttemptAt: new Date(t + 5000) })).toBe(true);
    row = await db.webhookDelivery.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ lockedUntil: null, nextAttemptAt: new Date(t + 5000) });
  });

  it('times a hung receiver out even under GC pressure, so one attempt at a time is open, inside its claim', async () => {
    const db = database.prisma;
    await hook();
    receiver.mode = 'hold';
    const [delivery] = await event('hung');
    // a node in a process that collects garbage all the time (nodejs/node#57736: a collected
    // AbortSignal.timeout never fires), running the built server code
    const script = `
      const dist = process.env.DIST;
      const { openDatabase } = await import(dist + '/storage/database.js');
      const { WebhookWorker } = await import(dist + '/services/webhooks/delivery.js');
      const { createLogger } = await import(dist + '/logger.js');
      const database = await openDatabase({ url: process.env.DATABASE_URL, kind: process.env.KIND }, { poolSize: 2 });
      const pressure = setInterval(() => globalThis.gc(), 10);
      const worker = new WebhookWorker(database.prisma, { logger: createLogger('silent'), keyEncryptionKey: undefined, allowPrivateNetworkRequests: true });
      const started = Date.now();
      await worker.runOnce();
      clearInterval(pressure);
      process.stdout.write(JSON.stringify({ ms: Date.now() - started }) + '\\n');
      // alive a while longer: the request's connection is closed by its abort, not by the exit
      await new Promise((r) => setTimeout(r, 3000));
      await database.close();
    `;
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH, DIST: pathToFileURL(join(ROOT, 'dist')).href, DATABASE_URL: testDb.url, KIND: kind },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const reported = new Promise<string>((resolve) => {
      child.stdout!.on('data', () => out.includes('\n') && resolve('reported'));
      child.on('exit', (code) => resolve(`exited (${code}) without a report: ${err}`));
    });
    // another node, polling all along
    const other = new WebhookWorker(db, { logger, keyEncryptionKey: undefined, allowPrivateNetworkRequests: true, pollMs: 100 });
    let patience: NodeJS.Timeout | undefined;
    try {
      await eventually(async () => receiver.messages.length > 0, 'the first attempt', 15_000);
      const claim = (await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).lockedUntil!;
      expect(claim).not.toBeNull();
      other.start();
      // past the claim: long enough for a request that ignores its timeout to be sent twice
      const ended = await Promise.race([reported, new Promise<string>((r) => (patience = setTimeout(() => r('still running'), LOCK_MS + 5000)))]);
      expect(receiver.overlapping()).toEqual([]);
      expect(ended).toBe('reported');
      expect(JSON.parse(out).ms).toBeLessThan(TIMEOUT_MS + 5000);
      const [first] = receiver.messages;
      await eventually(async () => first.closedAt !== undefined, 'the receiver sees the connection closed', 2000);
      expect(first.closedAt! - first.receivedAt).toBeGreaterThanOrEqual(TIMEOUT_MS - 1000);
      expect(first.closedAt!).toBeLessThan(claim.getTime() - CLAIM_MARGIN_MS + 1000);
      expect((await attemptsOf(delivery.id))[0].error).toBe('timed out after 10 s');
      // the retry comes from the other node, after the first request ended
      await eventually(async () => receiver.messages.length > 1, 'the retry', 5000);
    } finally {
      clearTimeout(patience);
      await other.stop();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(receiver.overlapping()).toEqual([]);
    expect(receiver.messages.every((m) => m.id === delivery.id && m.valid)).toBe(true);
    expect(receiver.messages[1].receivedAt).toBeGreaterThanOrEqual(receiver.messages[0].closedAt!);
  }, LOCK_MS + 40_000);
});
