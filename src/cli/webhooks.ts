import type { DeliveryInfo, WebhookInfo } from '../services/webhooks/registry.js';
import { describe, serverConfig, withDatabase } from './context.js';
import type { Command } from './command.js';
// withDatabase (context.ts) subscribes the webhooks' outbox to the audit trail
// for every command that opens the database, so that an event any command
// records reaches the webhooks.

/** The rules, loaded when a subcommand runs (not for --help). */
const registry = () => import('../services/webhooks/registry.js');

const when = (d: Date | null) => (d ? d.toISOString() : '-');

function describeWebhook(w: WebhookInfo): string {
  return describe({
    id: w.id, url: w.url, events: w.events,
    ...(w.disabled ? { state: `disabled: nothing is sent to it (why: gatehouse audit list --target ${w.id})` } : {}),
    secret: w.secretEncrypted ? 'encrypted at rest' : 'stored in the clear (set KEY_ENCRYPTION_KEY)', created: w.createdAt,
  });
}

function deliveryState(d: DeliveryInfo): string {
  if (d.deliveredAt) return `delivered ${when(d.deliveredAt)}`;
  if (d.failedAt) return `gave up ${when(d.failedAt)}`;
  return `pending, next attempt ${when(d.nextAttemptAt)}`;
}

function describeDelivery(d: DeliveryInfo): string {
  const attempts = d.attemptLog.map((a) => `    ${when(a.at)}  ${a.status ?? a.error}  ${a.durationMs} ms`);
  return [`  ${d.id}  ${d.eventType}  ${deliveryState(d)}  (${d.attempts} attempt${d.attempts === 1 ? '' : 's'})`, ...attempts].join('\n');
}

const secretNote = 'Keep it where the receiver verifies signatures; it is not shown again.';

export const webhooksCommand: Command = {
  name: 'webhooks',
  summary: 'send audit events to your receivers (Standard Webhooks)',
  intro: `Each audit event (see gatehouse audit --help) a webhook subscribes to is POSTed to its
URL as JSON, signed per the Standard Webhooks spec (headers webhook-id, webhook-timestamp,
webhook-signature: HMAC-SHA256 with the webhook's whsec_ secret). A 2xx answer delivers it;
otherwise it is retried (after 1 s, 5 s, 30 s, 2 min, 10 min, 30 min, then hourly) for a day,
and after a 429 or 503 not before its Retry-After (up to an hour). An attempt gets 10 s for the
answer. 410 Gone disables the webhook and gives up its pending deliveries (audit action
webhook.disabled). A retry has the same webhook-id: deduplicate by it. Addresses on private
networks are refused unless ALLOW_PRIVATE_NETWORK_REQUESTS=true.`,
  fieldFlags: { url: '--url', events: '--event' },
  subcommands: [
    {
      usage: 'create',
      summary: 'register a receiver; its signing secret is shown once',
      flags: {
        url: { type: 'string', arg: '<url>', help: 'where events are POSTed: https, or http on localhost' },
        event: { type: 'string', multiple: true, arg: '<event>', help: 'an audit action (e.g. client.created), or * for every event' },
      },
      async run({ values, out }) {
        const config = await serverConfig();
        const [{ createWebhook }, { isPrivateNetworkUrl }] = await Promise.all([registry(), import('../services/webhooks/outbound.js')]);
        await withDatabase(async ({ prisma: db }) => {
          const { webhook, secret } = await createWebhook(db, { url: values.url, events: values.event }, config.keyEncryptionKey);
          const note = !config.allowPrivateNetworkRequests && isPrivateNetworkUrl(webhook.url)
            ? '\nnote: this is a private-network address; servers refuse to send to it unless ALLOW_PRIVATE_NETWORK_REQUESTS=true'
            : '';
          out.print({ ...webhook, secret }, () => `${describeWebhook(webhook)}\n\nsigning secret  ${secret}\n(${secretNote})${note}`);
        });
      },
    },
    {
      usage: 'list',
      summary: 'list webhooks (never their secrets)',
      async run({ out }) {
        const { listWebhooks } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          const webhooks = await listWebhooks(db);
          out.print(webhooks, () => webhooks.map((w) => `${w.id}  ${w.url}  ${w.events.join(',')}${w.disabled ? '  disabled' : ''}`).join('\n') || 'no webhooks');
        });
      },
    },
    {
      usage: 'show <id>',
      summary: 'a webhook, its 20 most recent deliveries and their attempts',
      argName: 'webhook id',
      async run({ arg, out }) {
        const { showWebhook } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          const webhook = await showWebhook(db, arg);
          out.print(webhook, () => `${describeWebhook(webhook)}\n\nrecent deliveries:\n${webhook.deliveries.map(describeDelivery).join('\n') || '  none'}`);
        });
      },
    },
    {
      usage: 'delete <id>',
      summary: 'delete a webhook and its pending deliveries',
      argName: 'webhook id',
      async run({ arg, out }) {
        const { deleteWebhook } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          await deleteWebhook(db, arg);
          out.print({ deleted: arg }, () => `deleted webhook ${arg}`);
        });
      },
    },
    {
      usage: 'enable <id>',
      summary: 'send to a webhook again after its receiver answered 410 Gone (events from now on)',
      argName: 'webhook id',
      async run({ arg, out }) {
        const { enableWebhook } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          const webhook = await enableWebhook(db, arg);
          out.print(webhook, () => `webhook ${webhook.id} is enabled`);
        });
      },
    },
    {
      usage: 'redeliver <webhook-id> <delivery-id>',
      summary: 'send a delivery again now (e.g. one given up), with the same webhook-id; its attempts stay',
      async run({ args: [webhookId, deliveryId], out }) {
        const { redeliver } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          const delivery = await redeliver(db, webhookId, deliveryId);
          out.print(delivery, () => `queued again:\n${describeDelivery(delivery)}`);
        });
      },
    },
    {
      usage: 'rotate-secret <id>',
      summary: 'a new signing secret, shown once; the old one stops at once',
      argName: 'webhook id',
      async run({ arg, out }) {
        const config = await serverConfig();
        const { rotateWebhookSecret } = await registry();
        await withDatabase(async ({ prisma: db }) => {
          const { webhook, secret } = await rotateWebhookSecret(db, arg, config.keyEncryptionKey);
          out.print({ ...webhook, secret }, () => `new signing secret for ${webhook.id}  ${secret}\n(${secretNote})`);
        });
      },
    },
  ],
};
