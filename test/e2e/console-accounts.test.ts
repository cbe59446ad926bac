import type { Page } from 'playwright-core';
import { databaseKinds } from '../support/databases.js';
import { browserAvailable } from '../support/browser.js';
import { createClient } from '../support/gatehouse.js';
import { startApp, type AppServer } from '../support/apps.js';
import { WIDTHS, checkPage, person, signInToConsole, startConsoleStack, type ConsoleBrowser, type ConsoleStack } from '../support/console.js';

/**
 * The console's accounts, signing keys and registration tokens in Chromium,
 * at a desktop's and a phone's width, on both databases: an admin filters,
 * opens, disables, enables and deletes accounts, withdraws a consent, changes
 * a role, rotates the keys, makes and revokes a registration token; a viewer
 * sees it all with no controls and is refused every change; each result is
 * checked through the CLI, and every page passes checkPage.
 */

const TIMEOUT = 480_000;

const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());
const XSS = '<img src=x onerror=alert(1)>';

interface AccountJson { id: string; role: string | null; disabled: boolean }
interface KeyJson { kid: string; stage: string }
interface AuditJson { action: string; actorType: string; actorId: string | null; targetId: string | null }

describeIf('the console: accounts, keys and registration tokens on %s', (kind) => {
  let stack: ConsoleStack;
  let app: AppServer;

  beforeAll(async () => {
    stack = await startConsoleStack(kind);
    app = await startApp();
  }, TIMEOUT);
  afterAll(async () => {
    await app?.close();
    await stack?.close();
  });

  const cliJson = <T>(args: string[]): T => JSON.parse(stack.cli([...args, '--json'])) as T;
  const accountOf = (email: string) => cliJson<AccountJson[]>(['accounts', 'list', '--email', email])[0];
  const tokenPrefixes = () => cliJson<{ prefix: string }[]>(['registration-tokens', 'list']).map((t) => t.prefix);
  const h1 = (page: Page) => page.locator('h1').textContent();
  const csrfOf = (page: Page) => page.locator('input[name=csrf]').first().inputValue();
  const register = (token: string) => fetch(`${stack.gatehouse.url}/reg`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['https://app.example.com/cb'] }),
  });

  /** checkPage, expecting nothing wrong; `what` names the page in a failure. */
  async function clean(b: ConsoleBrowser, what: string): Promise<void> {
    const { accessibility, overflow, problems } = await checkPage(b);
    expect({ what, accessibility, problems, fits: overflow <= 0 }).toEqual({ what, accessibility: [], problems: [], fits: true });
  }

  /** The person, signed in to Gatehouse in this browser, allows the app (a remembered consent). */
  async function allowApp(page: Page, clientId: string): Promise<void> {
    const params = new URLSearchParams({
      client_id: clientId, response_type: 'code', redirect_uri: `${app.url}/cb`, scope: 'openid', prompt: 'consent', state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    });
    const before = app.hits.length;
    await page.goto(`${stack.gatehouse.url}/auth?${params}`);
    await page.getByRole('button', { name: 'Allow' }).click();
    await app.waitFor('/cb', before);
  }

  it.each(WIDTHS)('an admin and a viewer at the %s width', async (width, viewport) => {
    const n = width === 'desktop' ? 1000 : 2000;
    const bob = person(`bob${width}`, n + 1);
    const carl = person(`carl${width}`, n + 2);
    const mallory = { ...person(`mallory${width}`, n + 3), name: XSS };
    const ada = person(`ada${width}`, n + 4);
    const clientId = `sample-app-${width}`;
    createClient(stack.db.url, ['--name', `Sample App ${width}`, '--id', clientId, '--grant-type', 'authorization_code', '--redirect-uri', `${app.url}/cb`]);

    // bob: an admin for a moment (to read his own form token), then a viewer; he allows the app
    const viewer = await signInToConsole(stack, bob, viewport, 'admin');
    await viewer.page.goto(`${stack.gatehouse.url}/console/keys/rotate`);
    const viewerCsrf = await csrfOf(viewer.page);
    stack.cli(['accounts', 'grant-role', bob.emails[0].email, 'viewer']);
    await allowApp(viewer.page, clientId);
    for (const who of [carl, mallory]) await (await signInToConsole(stack, who, viewport)).context.close();
    const admin = await signInToConsole(stack, ada, viewport, 'admin');
    const { page } = admin;
    page.on('dialog', (d) => void admin.problems.push(`dialog: ${d.message()}`));
    const [bobId, carlId, malloryId, adaId] = [bob, carl, mallory, ada].map((p) => accountOf(p.emails[0].email).id);

    // the list, filtered; each row shows the role
    await page.goto(`${stack.gatehouse.url}/console/accounts`);
    expect(await h1(page)).toBe('Accounts');
    await clean(admin, 'accounts');
    await page.getByLabel('Email').fill(carl.emails[0].email);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/email=/);
    expect(await page.locator('table.accounts tbody tr').count()).toBe(1);
    expect(await page.locator('table.accounts tbody').textContent()).toContain(carl.emails[0].email);
    await clean(admin, 'accounts filtered');
    await page.goto(`${stack.gatehouse.url}/console/accounts?provider=github&limit=2`);
    expect(await page.locator('table.accounts tbody tr').count()).toBe(2);
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/after=/);
    expect(await page.locator('table.accounts tbody tr').count()).toBeGreaterThan(0);
    await page.goto(`${stack.gatehouse.url}/console/accounts?email=${encodeURIComponent(bob.emails[0].email)}`);
    expect(await page.locator('table.accounts tbody tr').textContent()).toContain('viewer');
    await page.goto(`${stack.gatehouse.url}/console/accounts?disabled=true&email=${encodeURIComponent(bob.emails[0].email)}`);
    expect(await page.textContent('main')).toContain('No account matches.');
    await page.goto(`${stack.gatehouse.url}/console/accounts?limit=nope`);
    expect(await page.textContent('.problems')).toContain('limit');
    await clean(admin, 'accounts with a problem');

    // stored XSS: the name is text
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(malloryId)}`);
    expect(await h1(page)).toBe(XSS);
    expect(await page.locator('main img').count()).toBe(0);
    await clean(admin, 'account with a hostile name');

    // bob: identities and the consent; withdraw it
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(bobId)}`);
    expect(await h1(page)).toBe(bob.name);
    const identities = page.locator('div.table-scroll[aria-label="Linked identities"]');
    expect(await identities.textContent()).toContain(String(bob.id));
    expect(await identities.textContent()).toContain('github');
    expect(await page.locator('div.table-scroll[aria-label="Consents"]').textContent()).toContain(`Sample App ${width}`);
    await clean(admin, 'account');
    await page.getByRole('link', { name: `Withdraw the consent to Sample App ${width}` }).click();
    await clean(admin, 'withdraw confirmation');
    await page.getByRole('button', { name: 'Withdraw the consent' }).click();
    await page.getByText('Consent withdrawn.').waitFor();
    expect(cliJson<{ clientId: string }[]>(['consents', 'list', '--account', bobId]).map((c) => c.clientId)).not.toContain(clientId);

    // roles: carl becomes a viewer and loses it; taking one's own admin role asks first
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(carlId)}`);
    await page.getByLabel('New role').selectOption('viewer');
    await page.getByRole('button', { name: 'Change the role' }).click();
    await page.getByText('Role changed.').waitFor();
    expect(accountOf(carl.emails[0].email).role).toBe('viewer');
    await page.getByLabel('New role').selectOption('none');
    await page.getByRole('button', { name: 'Change the role' }).click();
    await page.getByText('Role changed.').waitFor();
    expect(accountOf(carl.emails[0].email).role).toBeNull();
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(adaId)}`);
    await page.getByLabel('New role').selectOption('viewer');
    await page.getByRole('button', { name: 'Change the role' }).click();
    expect(await h1(page)).toBe('Remove your own admin role?');
    await clean(admin, 'self-demotion confirmation');
    await page.getByRole('link', { name: 'Cancel' }).click();
    expect(accountOf(ada.emails[0].email).role).toBe('admin');

    // a registration token: refused input kept, then made, shown once, used at /reg
    await page.goto(`${stack.gatehouse.url}/console/registration-tokens`);
    await clean(admin, 'registration tokens');
    // past the browser's own check (min="60"), to the server's
    await page.locator('form[action="/console/registration-tokens"]').evaluate((f) => void ((f as HTMLFormElement).noValidate = true));
    await page.getByLabel(/Lifetime in seconds/).fill('10');
    await page.getByRole('button', { name: 'Make a token' }).click();
    expect(await page.textContent('.problems')).toContain('expiresIn');
    expect(await page.getByLabel(/Lifetime in seconds/).inputValue()).toBe('10');
    await clean(admin, 'registration token refused');
    await page.getByLabel(/Lifetime in seconds/).fill('3600');
    await page.getByRole('button', { name: 'Make a token' }).click();
    expect(await h1(page)).toBe('Registration token made');
    await clean(admin, 'registration token made');
    const token = (await page.locator('code.secret').textContent())!.trim();
    const prefix = token.slice(0, 8);
    expect(tokenPrefixes()).toContain(prefix);
    expect((await register(token)).status).toBe(201);
    await page.goto(`${stack.gatehouse.url}/console/registration-tokens`);
    expect(await page.textContent('main')).toContain(prefix);
    expect(await page.textContent('main')).not.toContain(token);

    // the viewer: every page, no controls; every change refused, nothing changed
    const keysBefore = cliJson<KeyJson[]>(['keys', 'list']);
    const vp = viewer.page;
    for (const path of ['/console/accounts', `/console/accounts/${encodeURIComponent(carlId)}`, '/console/keys', '/console/registration-tokens']) {
      await vp.goto(`${stack.gatehouse.url}${path}`);
      expect(await vp.locator('main form[method=post], main .button.danger').count()).toBe(0);
      await clean(viewer, `viewer ${path}`);
    }
    const writes: [string, Record<string, string>][] = [
      [`/console/accounts/${carlId}/disable`, {}], [`/console/accounts/${carlId}/enable`, {}], [`/console/accounts/${carlId}/delete`, {}],
      [`/console/accounts/${carlId}/role`, { role: 'admin' }], [`/console/accounts/${bobId}/role`, { role: 'admin', confirm: 'yes' }],
      [`/console/accounts/${bobId}/consents/${clientId}/withdraw`, {}],
      ['/console/keys/rotate', {}], ['/console/registration-tokens', { expiresIn: '3600' }], [`/console/registration-tokens/${prefix}/revoke`, {}],
    ];
    const since = new Date().toISOString();
    for (const [path, form] of writes) {
      const r = await vp.request.post(`${stack.gatehouse.url}${path}`, { form: { csrf: viewerCsrf, ...form }, maxRedirects: 0 });
      expect({ path, status: r.status() }).toEqual({ path, status: 403 });
    }
    expect(accountOf(carl.emails[0].email)).toMatchObject({ id: carlId, role: null, disabled: false });
    expect(accountOf(bob.emails[0].email).role).toBe('viewer');
    expect(cliJson<KeyJson[]>(['keys', 'list'])).toEqual(keysBefore);
    expect(tokenPrefixes()).toEqual([prefix]);
    expect(cliJson<unknown[]>(['audit', 'list', '--actor', bobId, '--since', since])).toEqual([]);

    // disable bob: his next console request is refused; enable him again
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(bobId)}`);
    await page.getByRole('link', { name: 'Disable…' }).click();
    expect(await page.textContent('main')).toContain('ends everything of this account');
    await clean(admin, 'disable confirmation');
    await page.getByRole('button', { name: 'Disable the account' }).click();
    await page.getByText('Account disabled.').waitFor();
    await clean(admin, 'disabled account');
    expect(accountOf(bob.emails[0].email).disabled).toBe(true);
    await vp.goto(`${stack.gatehouse.url}/console/accounts`);
    expect(new URL(vp.url()).pathname).not.toBe('/console/accounts');
    stack.github.setUser(bob);
    await vp.getByRole('button', { name: 'Continue with GitHub' }).click();
    await vp.getByText('Account disabled').first().waitFor();
    await page.getByRole('button', { name: 'Enable the account' }).click();
    await page.getByText('Account enabled.').waitFor();
    expect(accountOf(bob.emails[0].email).disabled).toBe(false);

    // delete carl
    await page.goto(`${stack.gatehouse.url}/console/accounts/${encodeURIComponent(carlId)}`);
    await page.getByRole('link', { name: 'Delete…' }).click();
    await clean(admin, 'delete confirmation');
    await page.getByRole('button', { name: 'Delete the account' }).click();
    await page.getByText('Account deleted.').waitFor();
    await clean(admin, 'accounts after delete');
    expect(accountOf(carl.emails[0].email)).toBeUndefined();

    // rotate the keys: a new published key, as `gatehouse keys list` says
    await page.goto(`${stack.gatehouse.url}/console/keys`);
    await clean(admin, 'keys');
    await page.getByRole('link', { name: 'Rotate the keys…' }).click();
    await clean(admin, 'rotate confirmation');
    await page.getByRole('button', { name: 'Rotate the keys' }).click();
    await page.getByText(/Keys rotated/).waitFor();
    await clean(admin, 'keys rotated');
    const keysAfter = cliJson<KeyJson[]>(['keys', 'list']);
    const fresh = keysAfter.filter((k) => !keysBefore.some((b) => b.kid === k.kid));
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((k) => k.stage === 'published')).toBe(true);
    const rows = await page.locator('table.keys tbody tr').allTextContents();
    for (const k of keysAfter) expect(rows.find((r) => r.includes(k.kid))).toContain(k.stage);

    // revoke the token: /reg refuses it
    await page.goto(`${stack.gatehouse.url}/console/registration-tokens`);
    await page.getByRole('link', { name: `Revoke the token ${prefix}` }).click();
    await clean(admin, 'revoke confirmation');
    await page.getByRole('button', { name: 'Revoke the token' }).click();
    await page.getByText('Token revoked').waitFor();
    expect(tokenPrefixes()).toEqual([]);
    expect((await register(token)).status).toBe(401);

    // the audit trail names ada, an account, for every change
    const events = cliJson<AuditJson[]>(['audit', 'list', '--actor', adaId]);
    const did = (action: string, target?: string) => events.find((e) => e.action === action && (!target || e.targetId === target));
    for (const [action, target] of [
      ['consent.withdrawn', `${bobId}/${clientId}`], ['account.role_granted', carlId], ['account.role_revoked', carlId],
      ['registration_token.created', prefix], ['account.disabled', bobId], ['account.enabled', bobId], ['account.deleted', carlId],
      ['signing_key.rotated', undefined], ['registration_token.revoked', prefix],
    ] as const) {
      expect({ action, event: did(action, target) }).toEqual({ action, event: expect.objectContaining({ actorType: 'account', actorId: adaId }) });
    }
    expect(admin.problems).toEqual([]);
    await Promise.all([admin.context.close(), viewer.context.close()]);
  }, TIMEOUT);
});
