import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { databaseKinds } from '../support/databases.js';
import { browserAvailable } from '../support/browser.js';
import { eventually } from '../support/gatehouse.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { checkPage, DESKTOP, PHONE, person, signInToConsole, startConsoleStack, WIDTHS, type ConsoleBrowser, type ConsoleStack } from '../support/console.js';

/**
 * The console's webhooks and audit areas in Chromium, at a desktop's and a
 * phone's width, against a receiver that verifies Standard Webhooks
 * signatures: an admin makes a webhook (invalid input listed in place, the
 * secret shown once), watches an event's delivery in the log, sends it again
 * (same webhook-id), sees a receiver's 410 disable it and enables it again,
 * rotates its secret and deletes it, each change audited as the person. The
 * audit trail filters, pages and links actors and objects; details carrying
 * markup stay text. A viewer sees the pages without their controls, and each
 * write is refused on the server with the viewer's own form token.
 */

const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());
const TIMEOUT = 240_000;

const ADMIN = person('ada', 8001);
const VIEWER = person('vic', 8002);
const MARKUP = '<img src=x onerror=alert(1)>';

interface AuditRow { id: string; action: string; actorType: string; actorId: string | null; targetType: string | null; targetId: string | null; details: Record<string, unknown> }
interface WebhookJson { id: string; url: string; events: string[]; disabled: boolean; deliveries?: { id: string; attempts: number; deliveredAt: string | null }[] }

describeIf('the console: webhooks and the audit trail on %s', (kind) => {
  let stack: ConsoleStack;
  let receiver: WebhookReceiver;
  let adminId: string;
  let viewerId: string;
  /** alert() and friends any page opened: an injected script that ran */
  const dialogs: string[] = [];

  beforeAll(async () => {
    receiver = new WebhookReceiver();
    await receiver.listen();
    stack = await startConsoleStack(kind, { ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' });
    await (await signInToConsole(stack, ADMIN, DESKTOP, 'admin')).context.close();
    await (await signInToConsole(stack, VIEWER, DESKTOP, 'viewer')).context.close();
    adminId = json(['accounts', 'list', '--email', ADMIN.emails[0].email])[0].id;
    viewerId = json(['accounts', 'list', '--email', VIEWER.emails[0].email])[0].id;
  }, TIMEOUT);

  afterAll(async () => {
    if (process.env.SHOW_SERVER) process.stderr.write(stack.gatehouse.output().slice(-8000));
    await stack?.close();
    await receiver?.close();
  });

  const json = (args: string[]) => JSON.parse(stack.cli([...args, '--json']));
  const url = (path: string) => `${stack.gatehouse.url}${path}`;
  const audit = (args: string[]): AuditRow[] => json(['audit', 'list', ...args]);
  const webhook = (id: string): WebhookJson => json(['webhooks', 'show', id]);
  const webhookList = (): WebhookJson[] => json(['webhooks', 'list']);
  /** A client made on the CLI (audit action client.created); its id. */
  const makeClient = (name: string): string => json(['clients', 'create', '--name', name]).clientId;

  async function signIn(who: typeof ADMIN, viewport: { width: number; height: number }): Promise<ConsoleBrowser> {
    const b = await signInToConsole(stack, who, viewport);
    b.page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
    return b;
  }

  /** The checks of every console page: accessible, no sideways scroll, no CSP violation or console error, no dialog. */
  async function expectGoodPage(b: ConsoleBrowser): Promise<void> {
    const r = await checkPage(b);
    expect({ url: b.page.url(), accessibility: r.accessibility, problems: r.problems, overflows: r.overflow > 0, dialogs })
      .toEqual({ url: b.page.url(), accessibility: [], problems: [], overflows: false, dialogs: [] });
  }

  /** Reloads `page` until `test` holds. */
  async function reloadUntil(page: Page, test: () => Promise<boolean>, what: string): Promise<void> {
    await eventually(async () => {
      await page.reload();
      return test();
    }, what, 20_000);
  }

  const problemsOn = async (page: Page) => (await page.locator('.problems li').allTextContents()).map((t) => t.trim());

  it.each(WIDTHS)('lets an admin make, watch, redeliver, enable, rotate and delete a webhook at %s width', async (name, viewport) => {
    const b = await signIn(ADMIN, viewport);
    const { page } = b;
    const hookUrl = `http://127.0.0.1:${receiver.port}/hook-${name}`;

    await page.goto(url('/console/webhooks'));
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await expectGoodPage(b);
    await page.getByRole('link', { name: 'New webhook' }).click();
    await page.getByRole('heading', { name: 'New webhook', level: 1 }).waitFor();
    await expectGoodPage(b);

    // every problem at once, the input kept, nothing written
    await page.getByLabel(/^URL/).fill('http://10.1.2.3/hook');
    const refused = page.waitForResponse((r) => r.url() === url('/console/webhooks') && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    expect((await refused).status()).toBe(400);
    expect(await problemsOn(page)).toEqual([
      'url: must be https (http only for localhost, 127.0.0.1 or [::1])',
      'events: give at least one event: an audit action, or * for every event',
    ]);
    expect(await page.getByLabel(/^URL/).inputValue()).toBe('http://10.1.2.3/hook');
    await expectGoodPage(b);
    // an event no checkbox offers, posted with the page's own form token
    const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
    const unknown = await page.request.post(url('/console/webhooks'), { form: { csrf, url: hookUrl, events: 'no.such_event' }, maxRedirects: 0 });
    expect(unknown.status()).toBe(400);
    expect(await unknown.text()).toContain('events[0]: unknown event no.such_event');

    // made: the secret once, on the result page
    await page.getByLabel(/^URL/).fill(hookUrl);
    await page.getByLabel('client.created', { exact: true }).check();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await page.getByRole('heading', { name: 'Webhook created', level: 1 }).waitFor();
    const secret = (await page.locator('#webhook-secret').textContent())!.trim();
    expect(secret).toMatch(/^whsec_/);
    await expectGoodPage(b);
    receiver.secret = secret;
    const made = webhookList().find((w) => w.url === hookUrl)!;
    expect(made).toMatchObject({ events: ['client.created'], disabled: false });

    // an event, delivered, and shown in the log
    const clientId = makeClient(`Hooked ${name}`);
    await eventually(async () => receiver.about(clientId).some((m) => m.valid && m.answered === 204), 'the delivery');
    await page.getByRole('link', { name: 'Show the webhook' }).click();
    await page.getByRole('heading', { name: `Webhook ${made.id}`, level: 1 }).waitFor();
    const row = page.locator('tbody tr').first();
    await reloadUntil(page, async () => (await row.locator('.delivery-state').textContent())!.includes('delivered'), 'delivered in the log');
    expect(await row.textContent()).toContain('client.created');
    expect(await row.locator('ol.attempts li').allTextContents()).toEqual([expect.stringMatching(/: 204 \(\d+ ms\)$/)]);
    await expectGoodPage(b);

    // sent again under the same webhook-id
    const deliveryId = (await row.getAttribute('data-delivery'))!;
    await row.getByRole('button', { name: 'Redeliver' }).click();
    await page.getByText('Delivery queued again').waitFor();
    await eventually(async () => receiver.about(clientId).filter((m) => m.answered === 204).length === 2, 'the redelivery');
    const [first, again] = receiver.about(clientId);
    expect(again.id).toBe(first.id);
    expect(again.id).toBe(deliveryId);
    await reloadUntil(page, async () => (await row.locator('ol.attempts li').count()) === 2, 'two attempts in the log');
    await expectGoodPage(b);

    // a receiver's 410 disables it; a redelivery is refused in place; an admin enables it
    receiver.mode = 'gone';
    const goneClient = makeClient(`Gone ${name}`);
    await eventually(async () => receiver.about(goneClient).some((m) => m.answered === 410), 'the 410');
    receiver.mode = 'ok';
    await reloadUntil(page, async () => (await page.getByRole('button', { name: 'Enable' }).count()) === 1, 'disabled by the 410');
    await page.locator('tbody tr').first().getByRole('button', { name: 'Redeliver' }).click();
    await page.getByText('is disabled: enable it first').waitFor();
    await expectGoodPage(b);
    await page.goto(url('/console/webhooks'));
    expect(await page.locator('tbody tr', { hasText: hookUrl }).textContent()).toMatch(/disabled[\s\S]*1 given up, 0 retrying/);
    await expectGoodPage(b);
    await page.getByRole('link', { name: hookUrl }).click();
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByText('Webhook enabled').waitFor();
    expect(await page.getByRole('button', { name: 'Enable' }).count()).toBe(0);
    expect(webhook(made.id).disabled).toBe(false);

    // a new secret, behind a confirmation page, shown once; the next delivery is signed with it
    await page.getByRole('link', { name: 'Rotate secret' }).click();
    await page.getByRole('heading', { name: 'Rotate signing secret', level: 1 }).waitFor();
    await expectGoodPage(b);
    await page.getByRole('button', { name: 'Rotate the secret' }).click();
    await page.getByRole('heading', { name: 'Secret rotated', level: 1 }).waitFor();
    const rotated = (await page.locator('#webhook-secret').textContent())!.trim();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    await expectGoodPage(b);
    receiver.secret = rotated;
    const signedAnew = makeClient(`Rotated ${name}`);
    await eventually(async () => receiver.about(signedAnew).some((m) => m.valid && m.answered === 204), 'a delivery signed with the new secret');

    // deleted, behind a confirmation page
    await page.getByRole('link', { name: 'Show the webhook' }).click();
    await page.getByRole('link', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: 'Delete webhook', level: 1 }).waitFor();
    await expectGoodPage(b);
    await page.getByRole('button', { name: 'Delete the webhook' }).click();
    await page.getByText('Webhook deleted.').waitFor();
    expect(new URL(page.url()).pathname).toBe('/console/webhooks');
    await expectGoodPage(b);
    expect(webhookList().map((w) => w.id)).not.toContain(made.id);
    // every change names the person; the receiver's 410 is the system's
    const trail = audit(['--target-type', 'webhook', '--target', made.id]).reverse();
    expect(trail.map((e) => [e.action, e.actorType, e.actorId])).toEqual([
      ['webhook.created', 'account', adminId], ['webhook.redelivered', 'account', adminId], ['webhook.disabled', 'system', null],
      ['webhook.enabled', 'account', adminId], ['webhook.secret_rotated', 'account', adminId], ['webhook.deleted', 'account', adminId],
    ]);
    expect(trail[1].details).toMatchObject({ delivery: deliveryId, eventType: 'client.created' });
    await b.context.close();
  }, TIMEOUT);

  it.each(WIDTHS)('filters, pages and links the audit trail at %s width; details stay text', async (name, viewport) => {
    const clientId = makeClient(MARKUP);
    const b = await signIn(ADMIN, viewport);
    const { page } = b;

    // the client's name, with markup, is text
    await page.goto(url(`/console/audit?action=client.created&target=${encodeURIComponent(clientId)}`));
    const row = page.locator('tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.locator('dl.details').textContent()).toContain(MARKUP);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await row.locator('a.target').getAttribute('href')).toBe(`/console/clients/${encodeURIComponent(clientId)}`);
    await expectGoodPage(b);

    // the filter form; an object's links
    await page.goto(url('/console/audit'));
    await page.getByRole('heading', { name: 'Audit trail', level: 1 }).waitFor();
    await expectGoodPage(b);
    await page.getByLabel('Action').selectOption('account.role_granted');
    await page.getByLabel('Object id').fill(viewerId);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.searchParams.get('action') === 'account.role_granted');
    expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator('tbody tr td:nth-child(2)').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('account.role_granted')]));
    expect(await page.getByLabel('Action').inputValue()).toBe('account.role_granted');
    // the object's link leads to its account page, and to its own events
    expect(await page.locator('a.target').first().getAttribute('href')).toBe(`/console/accounts/${encodeURIComponent(viewerId)}`);
    await page.locator('a.target-events').first().click();
    await page.waitForURL((u) => u.searchParams.get('target') === viewerId && u.searchParams.get('targetType') === 'account');
    expect(await page.getByLabel('Object type').inputValue()).toBe('account');
    await expectGoodPage(b);

    // a webhook the admin made in the console: its event names the person, and links them and the webhook
    const hookUrl = `https://hooks.example.com/${name}`;
    await page.goto(url('/console/webhooks/new'));
    const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
    expect((await page.request.post(url('/console/webhooks'), { form: { csrf, url: hookUrl, events: '*' } })).status()).toBe(200);
    const hook = webhookList().find((w) => w.url === hookUrl)!;
    await page.goto(url(`/console/audit?targetType=webhook&target=${encodeURIComponent(hook.id)}`));
    const event = page.locator('tbody tr');
    expect(await event.count()).toBe(1);
    expect(await event.locator('td:nth-child(2)').textContent()).toContain('webhook.created');
    expect(await event.locator('a.actor').getAttribute('href')).toBe(`/console/accounts/${encodeURIComponent(adminId)}`);
    await event.locator('a.target').click();
    await page.getByRole('heading', { name: `Webhook ${hook.id}`, level: 1 }).waitFor();
    expect(await page.locator('main').textContent()).toContain('every event');
    await page.goBack();
    await event.locator('a.actor-events').click();
    await page.waitForURL((u) => u.searchParams.get('actor') === adminId);
    const actors = await page.locator('tbody tr td:nth-child(3)').allTextContents();
    expect(actors.length).toBeGreaterThanOrEqual(1);
    expect(actors.every((t) => t.includes(adminId))).toBe(true);
    await expectGoodPage(b);
    stack.cli(['webhooks', 'delete', hook.id]);

    // a bad date is a problem on the page, not a 500
    const bad = await page.goto(url('/console/audit?since=yesterday&outcome=maybe'));
    expect(bad!.status()).toBe(400);
    expect(await problemsOn(page)).toEqual([
      'since: not a date: yesterday (use ISO 8601, e.g. 2026-11-26T12:00:00Z)',
      'outcome: must be success or failure',
    ]);
    expect(await page.getByLabel(/^Since/).inputValue()).toBe('yesterday');
    await expectGoodPage(b);
    await b.context.close();
  }, TIMEOUT);

  it('pages older events 50 at a time, and links an API by its encoded identifier', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-audit-'));
    const resources = Array.from({ length: 55 }, (_, i) => ({ identifier: `https://paged-${i}.example.com/api/v1`, scopes: ['read'] }));
    writeFileSync(join(dir, 'seed.json'), JSON.stringify({ resources }));
    stack.cli(['seed', join(dir, 'seed.json')]);
    rmSync(dir, { recursive: true });
    const b = await signIn(ADMIN, PHONE);
    const { page } = b;
    await page.goto(url('/console/audit?action=api.created'));
    const ids = async () => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')!));
    const newest = await ids();
    expect(newest).toHaveLength(50);
    expect(await page.getByRole('link', { name: 'Newest' }).count()).toBe(0);
    const api = page.locator('a.target', { hasText: 'https://paged-' }).first();
    const identifier = (await api.textContent())!.trim();
    expect(await api.getAttribute('href')).toBe(`/console/apis/${encodeURIComponent(identifier)}`);
    await page.getByRole('link', { name: 'Older' }).click();
    await page.waitForURL((u) => u.searchParams.get('before') === newest[49] && u.searchParams.get('action') === 'api.created');
    const older = await ids();
    expect(older.length).toBeGreaterThanOrEqual(5);
    expect(older.every((id) => id < newest[49])).toBe(true);
    await expectGoodPage(b);
    await page.getByRole('link', { name: 'Newest' }).click();
    expect(await ids()).toEqual(newest);
    await b.context.close();
  }, TIMEOUT);

  it('shows a viewer every page without write controls, and refuses each write with 403, changing nothing', async () => {
    const id = (json(['webhooks', 'create', '--url', `https://hooks.example.com/${MARKUP}`, '--event', 'signing_key.rotated']) as WebhookJson).id;
    const gone = (json(['webhooks', 'create', '--url', `${receiver.url}-viewer`, '--event', 'client.updated']) as WebhookJson).id;
    receiver.mode = 'gone';
    const clientId = makeClient('Viewed');
    stack.cli(['clients', 'update', clientId, '--name', 'Viewed again']);
    await eventually(async () => receiver.about(clientId).some((m) => m.answered === 410), 'the 410');
    await eventually(async () => webhook(gone).disabled, 'disabled by the 410');
    receiver.mode = 'ok';
    const deliveryId = webhook(gone).deliveries![0].id;

    {
      const b = await signIn(VIEWER, PHONE);
      const { page } = b;
      await page.goto(url('/console/webhooks'));
      expect(await page.getByRole('link', { name: 'New webhook' }).count()).toBe(0);
      expect(await page.locator('main').textContent()).toContain(`https://hooks.example.com/${MARKUP}`);
      expect(await page.locator('main img').count()).toBe(0);
      await expectGoodPage(b);
      await page.goto(url(`/console/webhooks/${gone}`));
      expect(await page.locator('tbody tr').count()).toBe(1);
      for (const control of ['Enable', 'Redeliver', 'Rotate secret', 'Delete']) {
        expect(await page.getByRole('button', { name: control }).or(page.getByRole('link', { name: control })).count()).toBe(0);
      }
      expect(await page.locator('main form').count()).toBe(0);
      await expectGoodPage(b);
      await page.goto(url(`/console/audit?actor=${encodeURIComponent(viewerId)}`));
      await expectGoodPage(b);
      await b.context.close();
    }

    // the viewer's own valid form token changes nothing
    const b = await signIn(VIEWER, DESKTOP);
    await b.page.goto(url('/console/webhooks/new'));
    const token = (await b.page.locator('input[name=csrf]').first().getAttribute('value'))!;
    const state = () => [webhookList(), webhook(id), webhook(gone)];
    const stateBefore = state();
    const received = receiver.messages.length;
    const writes: [string, Record<string, string>][] = [
      ['/console/webhooks', { url: `${receiver.url}-viewer-made`, events: 'client.created' }],
      [`/console/webhooks/${gone}/enable`, {}],
      [`/console/webhooks/${gone}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`, {}],
      [`/console/webhooks/${id}/rotate-secret`, {}],
      [`/console/webhooks/${id}/delete`, {}],
    ];
    for (const [path, form] of writes) {
      const r = await b.page.request.post(url(path), { form: { csrf: token, ...form }, maxRedirects: 0 });
      expect({ path, status: r.status() }).toEqual({ path, status: 403 });
    }
    await new Promise((r) => setTimeout(r, 1_500));
    expect(state()).toEqual(stateBefore);
    expect(receiver.messages.length).toBe(received);
    expect(audit(['--actor', viewerId]).filter((e) => e.action.startsWith('webhook.'))).toEqual([]);
    await b.context.close();
    stack.cli(['webhooks', 'delete', id]);
    stack.cli(['webhooks', 'delete', gone]);
  }, TIMEOUT);
});
