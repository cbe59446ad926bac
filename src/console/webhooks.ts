import type { Context } from 'koa';
import * as webhooks from '../services/webhooks/registry.js';
import type { DeliveryInfo, WebhookInfo } from '../services/webhooks/registry.js';
import { isPrivateNetworkUrl } from '../services/webhooks/outbound.js';
import { AUDIT_ACTIONS } from '../services/audit.js';
import type { ServiceError } from '../services/errors.js';
import { consolePage, doneRedirect, field, fields, noticeOf, problemLines, tryChange, type ConsoleArea, type ConsoleDeps } from './context.js';
import { auditHref, isoTime } from './audit.js';

/**
 * The webhooks area, /console/webhooks: the receivers of audit events, made
 * (the signing secret shown once, on the result page), shown with their
 * delivery log, a delivery sent again, a disabled one enabled, the secret
 * rotated and the receiver deleted (these two behind confirmation pages).
 * Every change goes through services/webhooks/registry.ts, as the CLI's and
 * the management API's do.
 */

/** The notices the pages show: only these sentences, whatever the query says. */
const NOTICES = ['Webhook enabled: events from now on are sent to it.', 'Delivery queued again: it is sent within seconds.', 'Webhook deleted.'] as const;
const [ENABLED, REQUEUED, DELETED] = NOTICES;

/** Every event (the service's wildcard), then each audit action. */
const EVENT_CHOICES = [{ value: '*', label: 'Every event (*)' }, ...AUDIT_ACTIONS.map((a) => ({ value: a, label: a }))];

/** How many of a webhook's most recent deliveries the list and the detail read. */
const RECENT = 20;

const webhookPath = (id: string) => `/console/webhooks/${encodeURIComponent(id)}`;
const eventLabel = (events: string[]) => (events.includes('*') ? ['every event'] : events);

function deliveryView(d: DeliveryInfo) {
  const state = d.deliveredAt ? 'delivered' : d.failedAt ? 'given up' : 'pending';
  return {
    id: d.id, eventType: d.eventType, created: isoTime(d.createdAt), state,
    stateAt: isoTime(d.deliveredAt ?? d.failedAt ?? d.nextAttemptAt),
    attempts: d.attemptLog.map((a) => ({ at: isoTime(a.at), result: a.status === null ? (a.error ?? 'no answer') : String(a.status), durationMs: a.durationMs })),
    redeliver: `/console/webhooks/${encodeURIComponent(d.webhookId)}/deliveries/${encodeURIComponent(d.id)}/redeliver`,
  };
}

function webhookView(w: WebhookInfo) {
  return {
    id: w.id, path: webhookPath(w.id), url: w.url, events: eventLabel(w.events), disabled: w.disabled,
    secretEncrypted: w.secretEncrypted, created: isoTime(w.createdAt), auditHref: auditHref({ targetType: 'webhook', target: w.id }),
    privateNetwork: isPrivateNetworkUrl(w.url),
  };
}

/** A webhook's recent deliveries that did not get through: given up, or pending after a failed attempt. */
function failures(deliveries: DeliveryInfo[]) {
  const givenUp = deliveries.filter((d) => d.failedAt).length;
  const retrying = deliveries.filter((d) => !d.deliveredAt && !d.failedAt && d.attemptLog.length > 0).length;
  return { givenUp, retrying };
}

/** The refusal of a service the page shows in place (as its problems); anything else goes on to the gate's boundary. */
async function refusalOf(change: () => Promise<unknown>, codes: ServiceError['code'][]): Promise<string[] | undefined> {
  const outcome = await tryChange(change, codes);
  return 'refused' in outcome ? problemLines(outcome.problems) : undefined;
}

async function showDetail(ctx: Context, deps: ConsoleDeps, id: string, problems: string[] = [], status = 200) {
  const w = await webhooks.showWebhook(deps.db, id, RECENT);
  consolePage(ctx, 'webhooks', 'webhooks-detail', { webhook: webhookView(w), deliveries: w.deliveries.map(deliveryView), notice: noticeOf(ctx, NOTICES), problems }, status);
}

function showForm(ctx: Context, form: { url: string; events: string[] }, problems: string[] = [], status = 200) {
  consolePage(ctx, 'webhooks', 'webhooks-form', { form, choices: EVENT_CHOICES, problems }, status);
}

function showSecret(ctx: Context, w: WebhookInfo, secret: string, created: boolean) {
  consolePage(ctx, 'webhooks', 'webhooks-secret', { webhook: webhookView(w), secret, created });
}

async function showConfirm(ctx: Context, deps: ConsoleDeps, action: 'delete' | 'rotate-secret') {
  const w = await webhooks.showWebhook(deps.db, ctx.params.id, 1);
  consolePage(ctx, 'webhooks', 'webhooks-confirm', { webhook: webhookView(w), action });
}

export const webhooksArea: ConsoleArea = (router, deps) => {
  router.get('/console/webhooks', async (ctx) => {
    const list = await webhooks.listWebhooks(deps.db);
    const recent = await Promise.all(list.map((w) => webhooks.showWebhook(deps.db, w.id, RECENT).then((s) => s.deliveries, () => [])));
    consolePage(ctx, 'webhooks', 'webhooks', {
      webhooks: list.map((w, i) => ({ ...webhookView(w), ...failures(recent[i]) })), recent: RECENT, notice: noticeOf(ctx, NOTICES),
    });
  });

  router.get('/console/webhooks/new', (ctx) => showForm(ctx, { url: '', events: [] }));

  router.post('/console/webhooks', async (ctx) => {
    const form = { url: field(ctx, 'url'), events: fields(ctx, 'events') };
    let made: Awaited<ReturnType<typeof webhooks.createWebhook>> | undefined;
    const problems = await refusalOf(async () => {
      made = await webhooks.createWebhook(deps.db, { url: form.url, events: form.events }, deps.keyEncryptionKey);
    }, ['invalid']);
    if (problems || !made) return showForm(ctx, form, problems, 400);
    showSecret(ctx, made.webhook, made.secret, true);
  });

  router.get('/console/webhooks/:id', (ctx) => showDetail(ctx, deps, ctx.params.id));

  router.post('/console/webhooks/:id/enable', async (ctx) => {
    const w = await webhooks.enableWebhook(deps.db, ctx.params.id);
    doneRedirect(ctx, webhookPath(w.id), ENABLED);
  });

  router.post('/console/webhooks/:id/deliveries/:deliveryId/redeliver', async (ctx) => {
    const { id, deliveryId } = ctx.params;
    // a disabled webhook, or a delivery being sent right now: said on the page
    const problems = await refusalOf(() => webhooks.redeliver(deps.db, id, deliveryId), ['conflict']);
    if (problems) return showDetail(ctx, deps, id, problems, 409);
    doneRedirect(ctx, webhookPath(id), REQUEUED);
  });

  router.get('/console/webhooks/:id/rotate-secret', (ctx) => showConfirm(ctx, deps, 'rotate-secret'));
  router.post('/console/webhooks/:id/rotate-secret', async (ctx) => {
    const { webhook, secret } = await webhooks.rotateWebhookSecret(deps.db, ctx.params.id, deps.keyEncryptionKey);
    showSecret(ctx, webhook, secret, false);
  });

  router.get('/console/webhooks/:id/delete', (ctx) => showConfirm(ctx, deps, 'delete'));
  router.post('/console/webhooks/:id/delete', async (ctx) => {
    await webhooks.deleteWebhook(deps.db, ctx.params.id);
    doneRedirect(ctx, '/console/webhooks', DELETED);
  });
};
