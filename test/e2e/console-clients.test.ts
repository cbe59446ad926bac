import type { Page } from 'playwright-core';
import { databaseKinds } from '../support/databases.js';
import { browserAvailable } from '../support/browser.js';
import { eventually, tokenRequest } from '../support/gatehouse.js';
import { checkPage, person, signInToConsole, startConsoleStack, WIDTHS, DESKTOP, type ConsoleBrowser, type ConsoleStack } from '../support/console.js';

/**
 * The console's clients and APIs areas in Chromium, at a desktop's and a
 * phone's width: an admin makes an API and a client for it (whose secret,
 * shown once, gets tokens), edits it (a change from a stale page is refused),
 * rotates its secret and deletes both; invalid input is listed and writes
 * nothing; names with markup stay text. A viewer sees everything and can
 * change nothing, whatever it posts.
 */

const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());
const TIMEOUT = 240_000;
/** the whole flow of an admin, with axe on every page it opens */
const FLOW_TIMEOUT = 600_000;

const ADMIN = person('ada', 7001);
const VIEWER = person('vic', 7002);
const TARGET_API = 'https://target.example.com';
const TARGET_CLIENT = 'target-client';

describeIf('the console: clients and APIs on %s', (kind) => {
  let stack: ConsoleStack;
  let adminId: string;
  /** alert() and friends a page opened: an injected script that ran */
  const dialogs: string[] = [];

  beforeAll(async () => {
    stack = await startConsoleStack(kind);
    const first = await signInToConsole(stack, ADMIN, DESKTOP, 'admin');
    await first.context.close();
    const viewer = await signInToConsole(stack, VIEWER, DESKTOP, 'viewer');
    await viewer.context.close();
    adminId = json(['accounts', 'list', '--email', ADMIN.emails[0].email])[0].id;
    stack.cli(['resources', 'create', '--identifier', TARGET_API, '--scope', 'things:read']);
    stack.cli(['clients', 'create', '--id', TARGET_CLIENT, '--name', 'Target', '--resource', TARGET_API]);
  }, TIMEOUT);

  afterAll(async () => {
    await stack?.close();
  });

  const json = (args: string[]) => JSON.parse(stack.cli([...args, '--json']));
  const url = (path: string) => `${stack.gatehouse.url}${path}`;

  async function signIn(who: typeof ADMIN, viewport: { width: number; height: number }): Promise<ConsoleBrowser> {
    const b = await signInToConsole(stack, who, viewport);
    b.context.on('page', (p) => p.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss())));
    b.page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
    return b;
  }

  /** The checks of every console page: accessible, no sideways scroll, no CSP violation or console error, no dialog. */
  async function expectGoodPage(b: ConsoleBrowser, page: Page = b.page): Promise<void> {
    const r = await checkPage({ ...b, page });
    expect({ url: page.url(), accessibility: r.accessibility, problems: r.problems, overflows: r.overflow > 0, dialogs })
      .toEqual({ url: page.url(), accessibility: [], problems: [], overflows: false, dialogs: [] });
  }

  /** Opens a page; its status. `check: false` for a page this width already checked (axe takes seconds). */
  async function visit(b: ConsoleBrowser, path: string, { page = b.page, check = true } = {}): Promise<number> {
    const res = await page.goto(url(path));
    if (check) await expectGoodPage(b, page);
    return res!.status();
  }

  /** Clicks a form's button and waits for the page it leads to; its status. */
  async function submit(b: ConsoleBrowser, button: string, { page = b.page, check = true } = {}): Promise<number> {
    const [res] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: button }).click()]);
    if (check) await expectGoodPage(b, page);
    return res!.status();
  }

  async function follow(b: ConsoleBrowser, link: string, { check = true } = {}): Promise<void> {
    await Promise.all([b.page.waitForNavigation(), b.page.getByRole('link', { name: link }).click()]);
    if (check) await expectGoodPage(b);
  }

  const auditOf = (action: string, target: string) => json(['audit', 'list', '--action', action, '--target', target]);
  const expectAuditedByAdmin = (action: string, target: string) =>
    expect(auditOf(action, target)).toEqual([expect.objectContaining({ actorType: 'account', actorId: adminId, outcome: 'success' })]);
  const clientIds = () => json(['clients', 'list']).map((c: { clientId: string }) => c.clientId).sort();
  const apiIds = () => json(['resources', 'list']).map((a: { identifier: string }) => a.identifier).sort();
  const ccToken = (clientId: string, secret: string, resource: string) => tokenRequest(stack.gatehouse.url, { grant_type: 'client_credentials', resource }, [clientId, secret]);

  it.each(WIDTHS)('an admin makes, changes and deletes an API and a client (%s)', async (width, viewport) => {
    const b = await signIn(ADMIN, viewport);
    const { page } = b;
    const api = `https://orders-${width}.example.com`;
    const apiName = `Orders <script>alert(1)</script> ${width}`;
    const clientId = `orders-svc-${width}`;
    const clientName = `<img src=x onerror=alert(1)> ${width}`;
    try {
      // an API: invalid input first (every problem listed, nothing written), then a good one
      await visit(b, '/console/apis');
      await follow(b, 'New API');
      const before = apiIds();
      await page.getByLabel(/^Identifier/).fill('ftp://orders.example.com');
      await page.getByLabel(/^Access-token lifetime/).fill('soon');
      await page.getByLabel(/^Scopes/).fill('ok bad"scope');
      expect(await submit(b, 'Create the API')).toBe(400);
      const apiProblems = await page.locator('.problems li').allTextContents();
      expect(apiProblems).toEqual(expect.arrayContaining([expect.stringMatching(/^identifier: /), expect.stringMatching(/^accessTokenTtl: must be a whole number/), expect.stringMatching(/^scopes\[1\]: /)]));
      expect(await page.getByLabel(/^Access-token lifetime/).inputValue()).toBe('soon');
      expect(apiIds()).toEqual(before);

      await page.getByLabel(/^Identifier/).fill(api);
      await page.getByLabel(/^Name/).fill(apiName);
      await page.getByLabel(/^Scopes/).fill('orders:read orders:write');
      await page.getByLabel(/^Access-token lifetime/).fill('600');
      expect(await submit(b, 'Create the API')).toBe(200);
      expect(await page.locator('h1').textContent()).toBe(apiName);
      expectAuditedByAdmin('api.created', api);

      await follow(b, 'Edit');
      await page.getByLabel(/^Access-token lifetime/).fill('900');
      expect(await submit(b, 'Save changes', { check: false })).toBe(200);
      expect(json(['resources', 'show', api])).toMatchObject({ accessTokenTtl: 900, name: apiName, scopes: ['orders:read', 'orders:write'] });
      expectAuditedByAdmin('api.updated', api);

      // a client: invalid input, then a good one whose secret is shown once and gets tokens
      await visit(b, '/console/clients');
      await follow(b, 'New client');
      const clientsBefore = clientIds();
      await page.getByLabel(/^Client id/).fill('-bad id');
      await page.locator('input[name=grantTypes][value=authorization_code]').check();
      await page.getByLabel(/^Redirect URIs/).fill('http://example.com/cb\nnot a url');
      await page.getByLabel(/^Public keys/).fill('{not json');
      expect(await submit(b, 'Create the client')).toBe(400);
      const clientProblems = await page.locator('.problems li').allTextContents();
      expect(clientProblems).toEqual(expect.arrayContaining([
        expect.stringMatching(/^jwks: must be a JWK Set in JSON/), expect.stringMatching(/^clientId: /), expect.stringMatching(/^name: /),
        expect.stringMatching(/^redirectUris\[0\]: must use https/), expect.stringMatching(/^redirectUris\[1\]: not an absolute URL/),
      ]));
      expect(await page.getByLabel(/^Redirect URIs/).inputValue()).toBe('http://example.com/cb\nnot a url');
      expect(await page.locator('input[name=grantTypes][value=authorization_code]').isChecked()).toBe(true);
      expect(clientIds()).toEqual(clientsBefore);

      await page.getByLabel(/^Client id/).fill(clientId);
      await page.getByLabel(/^Name/).fill(clientName);
      await page.locator('input[name=grantTypes][value=authorization_code]').uncheck();
      await page.getByLabel(/^Redirect URIs/).fill('');
      await page.getByLabel(/^Public keys/).fill('');
      await page.locator(`input[name=resources][value="${api}"]`).check();
      await page.getByLabel(/^Scopes it may be granted/).fill('orders:read');
      expect(await submit(b, 'Create the client')).toBe(200);
      const secret = (await page.locator('#client-secret').textContent())!.trim();
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expectAuditedByAdmin('client.created', clientId);
      expect((await ccToken(clientId, secret, api)).status).toBe(200);

      // the secret is not shown again; the detail page shows every setting and the version
      await follow(b, 'Show the client');
      expect(await page.content()).not.toContain(secret);
      expect(await page.locator('h1').textContent()).toBe(clientName);
      const shown = json(['clients', 'show', clientId]);
      expect(await page.locator('dl.facts').textContent()).toContain(`"${new Date(shown.updatedAt).getTime()}"`);

      // search finds it by name, and not the others
      await visit(b, `/console/clients?q=${encodeURIComponent(`onerror=alert(1)> ${width}`)}`);
      expect(await page.locator('tbody tr').count()).toBe(1);
      expect(await page.locator('tbody').textContent()).toContain(clientId);
      await page.getByLabel('Search by id or name').fill(`svc-${width}`);
      await submit(b, 'Search', { check: false });
      expect(new URL(page.url()).searchParams.get('q')).toBe(`svc-${width}`);
      expect(await page.locator('tbody tr').count()).toBe(1);

      // edits in two tabs: the second, from the version both read, is refused and changes nothing
      const second = await b.context.newPage();
      await visit(b, `/console/clients/${clientId}/edit`);
      await visit(b, `/console/clients/${clientId}/edit`, { page: second, check: false });
      await page.getByLabel(/^Name/).fill(`Orders service ${width}`);
      expect(await submit(b, 'Save changes', { check: false })).toBe(200);
      expect(await page.getByRole('status').textContent()).toContain('Client saved.');
      await second.getByLabel(/^Scopes it may be granted/).fill('orders:read orders:write');
      expect(await submit(b, 'Save changes', { page: second })).toBe(409);
      expect(await second.locator('.problems').textContent()).toContain('Someone else changed this client after you opened this page: reload it');
      expect(json(['clients', 'show', clientId])).toMatchObject({ name: `Orders service ${width}`, scopes: ['orders:read'] });
      expect(auditOf('client.updated', clientId)).toHaveLength(1);
      expectAuditedByAdmin('client.updated', clientId);
      await second.close();

      // rotate the secret: the old one is refused, the new one works
      await visit(b, `/console/clients/${clientId}`, { check: false });
      await follow(b, 'Rotate secret');
      expect(await submit(b, 'Rotate the secret')).toBe(200);
      const rotated = (await page.locator('#client-secret').textContent())!.trim();
      expect(rotated).not.toBe(secret);
      expectAuditedByAdmin('client.secret_rotated', clientId);
      await eventually(async () => (await ccToken(clientId, secret, api)).status === 401, 'the old secret to be refused');
      expect((await ccToken(clientId, rotated, api)).status).toBe(200);

      // delete from a stale confirmation page: refused; then from a fresh one
      await visit(b, `/console/clients/${clientId}`, { check: false });
      await follow(b, 'Delete', { check: false });
      stack.cli(['clients', 'update', clientId, '--name', `Renamed ${width}`]);
      expect(await submit(b, 'Delete the client')).toBe(409);
      expect(await page.locator('.problems').textContent()).toContain('Someone else changed this client');
      expect(clientIds()).toContain(clientId);
      expect(await submit(b, 'Delete the client', { check: false })).toBe(200);
      expect(await page.getByRole('status').textContent()).toContain('Client deleted.');
      expect(clientIds()).not.toContain(clientId);
      expectAuditedByAdmin('client.deleted', clientId);

      // the API, now unused, goes too
      await visit(b, `/console/apis/${encodeURIComponent(api)}`, { check: false });
      expect(await page.locator('h1').textContent()).toBe(apiName);
      await follow(b, 'Delete');
      expect(await submit(b, 'Delete the API', { check: false })).toBe(200);
      expect(apiIds()).not.toContain(api);
      expectAuditedByAdmin('api.deleted', api);
      expect(dialogs).toEqual([]);
    } finally {
      await b.context.close();
    }
  }, FLOW_TIMEOUT);

  it.each(WIDTHS)('an API still given to a client stays, and the page says why; built-in clients say what they are (%s)', async (_width, viewport) => {
    const b = await signIn(ADMIN, viewport);
    try {
      await visit(b, `/console/apis/${encodeURIComponent(TARGET_API)}/delete`);
      expect(await submit(b, 'Delete the API')).toBe(409);
      expect(await b.page.locator('.problems').textContent()).toContain(TARGET_CLIENT);
      expect(apiIds()).toContain(TARGET_API);
      await visit(b, '/console/clients?q=gatehouse-');
      expect(await b.page.locator('tbody tr').count()).toBe(2);
      expect(await b.page.locator('tbody').textContent()).toContain('built in');
      await visit(b, '/console/clients/gatehouse-console');
      expect(await b.page.locator('main').textContent()).toContain('This client is built in');
      await visit(b, '/console/clients/gatehouse-console/edit');
    } finally {
      await b.context.close();
    }
  }, TIMEOUT);

  it.each(WIDTHS)('a viewer sees clients and APIs, no way to change them, and every change it posts is refused (%s)', async (_width, viewport) => {
    const b = await signIn(VIEWER, viewport);
    const { page } = b;
    try {
      for (const path of ['/console/clients', '/console/apis', `/console/clients/${TARGET_CLIENT}`, `/console/apis/${encodeURIComponent(TARGET_API)}`]) {
        expect(await visit(b, path)).toBe(200);
        expect(await page.locator('main form[method=post]').count()).toBe(0);
        expect(await page.locator('main .toolbar a.button, main button.primary, main button.danger').count()).toBe(0);
      }
      expect(await page.locator('dl.facts').textContent()).toContain(TARGET_API);

      // the viewer's own, valid form token, from a form it can open but not send
      await page.goto(url('/console/clients/+new'));
      const csrf = (await page.locator('input[name=csrf]').getAttribute('value'))!;
      const client = json(['clients', 'show', TARGET_CLIENT]);
      const api = json(['resources', 'show', TARGET_API]);
      const clientsBefore = clientIds();
      const apisBefore = apiIds();
      const posts: [string, Record<string, string>][] = [
        ['/console/clients/+new', { name: 'Sneaky', grantTypes: 'client_credentials', tokenEndpointAuthMethod: 'client_secret_basic', profile: 'default', pkce: 'required' }],
        [`/console/clients/${TARGET_CLIENT}/edit`, { name: 'Sneaky', version: String(new Date(client.updatedAt).getTime()), grantTypes: 'client_credentials', tokenEndpointAuthMethod: 'client_secret_basic', profile: 'default', pkce: 'required' }],
        [`/console/clients/${TARGET_CLIENT}/rotate-secret`, {}],
        [`/console/clients/${TARGET_CLIENT}/delete`, { version: String(new Date(client.updatedAt).getTime()) }],
        ['/console/apis/new', { identifier: 'https://sneaky.example.com', tokenFormat: 'jwt', signingAlg: 'ES256' }],
        [`/console/apis/${encodeURIComponent(TARGET_API)}/edit`, { name: 'Sneaky', tokenFormat: 'jwt', signingAlg: 'ES256', accessTokenTtl: '60' }],
        [`/console/apis/${encodeURIComponent(TARGET_API)}/delete`, {}],
      ];
      for (const [path, form] of posts) {
        const res = await page.request.post(url(path), { form: { csrf, ...form }, maxRedirects: 0 });
        expect({ path, status: res.status() }).toEqual({ path, status: 403 });
      }
      expect(json(['clients', 'show', TARGET_CLIENT])).toEqual(client);
      expect(json(['resources', 'show', TARGET_API])).toEqual(api);
      expect(clientIds()).toEqual(clientsBefore);
      expect(apiIds()).toEqual(apisBefore);
      expect(auditOf('client.secret_rotated', TARGET_CLIENT)).toEqual([]);
    } finally {
      await b.context.close();
    }
  }, TIMEOUT);
});
