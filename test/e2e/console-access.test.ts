import { browserAvailable } from '../support/browser.js';
import { databaseKinds } from '../support/databases.js';
import { runCli } from '../support/processes.js';
import { checkPage, consoleFormToken, DESKTOP, openBrowser, person, PHONE, signInToConsole, startConsoleStack, WIDTHS, type ConsoleStack } from '../support/console.js';

/**
 * Who may enter the console, in headless Chromium against the built server:
 * nobody without a role; the bootstrap admin named by CONSOLE_ADMIN_EMAIL by
 * a verified email; viewers read and cannot change anything; every POST needs
 * the form token of the session; a removed role or a disabled account is
 * refused on the next request. The overview at both widths, scanned with axe.
 */

const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());

const ada = person('ada', 1001);
const eve = person('eve', 1002);
const vic = person('vic', 1003);

describeIf('who may enter the console on %s', (kind) => {
  let stack: ConsoleStack;

  beforeAll(async () => {
    stack = await startConsoleStack(kind, { CONSOLE_ADMIN_EMAIL: 'ADA@example.com' });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  const audit = (args: string[]) => JSON.parse(stack.cli(['audit', 'list', '--json', ...args])) as { action: string; actorType: string; actorId: string | null; targetId: string | null; details: Record<string, unknown> }[];
  const accountOf = (email: string) => (JSON.parse(stack.cli(['accounts', 'list', '--json', '--email', email])) as { id: string; role: string | null }[])[0];

  it('sends a stranger through sign-in, and refuses a person without a role', async () => {
    const b = await openBrowser(stack, PHONE);
    const first = await b.page.goto(`${stack.gatehouse.url}/console`);
    expect(new URL(b.page.url()).pathname).toMatch(/^\/interaction\//);
    expect(first!.status()).toBe(200);
    stack.github.setUser(eve);
    await b.page.getByRole('button', { name: 'Continue with GitHub' }).click();
    await b.page.getByRole('heading', { name: 'No access to the console' }).waitFor();
    const refused = await b.page.reload();
    expect(refused!.status()).toBe(403);
    expect(await b.page.locator('nav').count()).toBe(0);
    expect(accountOf('eve@example.com').role).toBeNull();
    expect((await checkPage(b)).accessibility).toEqual([]);
    await b.context.close();
  });

  it('makes the bootstrap admin an admin on first entry, audited', async () => {
    const b = await signInToConsole(stack, ada, DESKTOP);
    await b.page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await b.page.locator('.role').textContent()).toBe('admin');
    const ids = accountOf('ada@example.com');
    expect(ids.role).toBe('admin');
    const [granted] = audit(['--action', 'account.role_granted', '--target', ids.id]);
    expect(granted).toMatchObject({ actorType: 'system', details: expect.objectContaining({ role: 'admin', via: 'bootstrap' }) });
    await b.context.close();
  });

  it.each(WIDTHS)('shows the overview at %s width: health, charts, failures, keys; no accessibility, CSP or width problem', async (_name, viewport) => {
    const b = await signInToConsole(stack, ada, viewport);
    const response = await b.page.goto(`${stack.gatehouse.url}/console`);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['content-security-policy']).not.toContain('script-src');
    expect(headers['cache-control']).toBe('no-store');
    await b.page.getByRole('heading', { name: 'Health' }).waitFor();
    expect(await b.page.locator('dl.facts').textContent()).toContain('answering');
    // three charts; the sign-ins chart counts this test's sign-ins
    expect(await b.page.locator('figure.chart').count()).toBe(3);
    const signIns = await b.page.locator('figure.chart figcaption').first().textContent();
    expect(Number(/: (\d+) in 24 hours/.exec(signIns!)![1])).toBeGreaterThanOrEqual(2);
    // four keys: next and current for ES256 and RS256
    expect(await b.page.locator('section[aria-labelledby="keys-heading"] tbody tr').count()).toBe(4);
    const checked = await checkPage(b);
    expect(checked).toEqual({ accessibility: [], overflow: 0, problems: [] });
    // the keyboard reaches the navigation first (after the skip link), and focus shows
    await b.page.keyboard.press('Tab');
    expect(await b.page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await b.page.keyboard.press('Tab');
    await b.page.keyboard.press('Tab');
    expect(await b.page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe('solid');
    await b.context.close();
  });

  it('lets a viewer read and refuses every change, on the server; a POST needs the session\'s form token', async () => {
    await (await signInToConsole(stack, vic, PHONE)).context.close();
    const b = await signInToConsole(stack, vic, PHONE, 'viewer');
    await b.page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await b.page.locator('.role').textContent()).toBe('viewer');
    // the viewer's own valid form token does not make a change
    const csrf = await consoleFormToken(b);
    expect(csrf).toMatch(/^[\w-]{43}$/);
    const keysBefore = stack.cli(['keys', 'list', '--json']);
    const asViewer = await b.page.request.post(`${stack.gatehouse.url}/console/keys/rotate`, { form: { csrf }, maxRedirects: 0 });
    expect(asViewer.status()).toBe(403);
    expect(await asViewer.text()).toContain('You can look, not change');
    expect(stack.cli(['keys', 'list', '--json'])).toBe(keysBefore);

    // an admin's POST without the token, or with another session's, changes nothing either
    const admin = await signInToConsole(stack, ada, DESKTOP);
    const noToken = await admin.page.request.post(`${stack.gatehouse.url}/console/keys/rotate`, { form: {}, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    expect(await noToken.text()).toContain('This form has expired');
    const othersToken = await admin.page.request.post(`${stack.gatehouse.url}/console/keys/rotate`, { form: { csrf }, maxRedirects: 0 });
    expect(othersToken.status()).toBe(403);
    expect(stack.cli(['keys', 'list', '--json'])).toBe(keysBefore);
    await Promise.all([b.context.close(), admin.context.close()]);
  });

  it('refuses a removed role and a disabled account on the next request', async () => {
    const b = await signInToConsole(stack, vic, DESKTOP);
    await b.page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    stack.cli(['accounts', 'revoke-role', 'vic@example.com']);
    expect((await b.page.reload())!.status()).toBe(403);
    await b.page.getByRole('heading', { name: 'No access to the console' }).waitFor();

    stack.cli(['accounts', 'grant-role', 'vic@example.com', 'viewer']);
    expect((await b.page.reload())!.status()).toBe(200);
    const { id } = accountOf('vic@example.com');
    stack.cli(['accounts', 'disable', id]);
    // disabling ends the account's sessions: the console asks to sign in again, and the sign-in is refused
    await b.page.reload();
    expect(await b.page.locator('nav[aria-label=Console]').count()).toBe(0);
    expect(new URL(b.page.url()).pathname).toMatch(/^\/(interaction\/|console)/);
    const revoked = audit(['--action', 'account.role_revoked', '--target', id]);
    expect(revoked).toHaveLength(1);
    await b.context.close();
  });

  it("does not let an admin disable or delete their own account, nor the only admin give up the role, and every client id has its own page", async () => {
    const b = await signInToConsole(stack, ada, DESKTOP);
    const { id } = accountOf('ada@example.com');
    const csrf = await consoleFormToken(b);
    for (const action of ['disable', 'delete']) {
      const refused = await b.page.request.post(`${stack.gatehouse.url}/console/accounts/${id}/${action}`, { form: { csrf }, maxRedirects: 0 });
      expect(refused.status()).toBe(409);
      expect(await refused.text()).toContain(`gatehouse accounts ${action}`);
    }
    // nor, as the only admin, give the role up, even confirmed
    const demoted = await b.page.request.post(`${stack.gatehouse.url}/console/accounts/${id}/role`, { form: { csrf, role: 'viewer', confirm: 'yes' }, maxRedirects: 0 });
    expect(demoted.status()).toBe(409);
    expect(await demoted.text()).toContain('only admin');
    expect(accountOf('ada@example.com').role).toBe('admin');
    expect((await b.page.goto(`${stack.gatehouse.url}/console`))!.status()).toBe(200);
    // a client called "new" has its page; "." and ".." are refused by the rule for every door
    stack.cli(['clients', 'create', '--name', 'Called new', '--id', 'new', '--grant-type', 'client_credentials']);
    await b.page.goto(`${stack.gatehouse.url}/console/clients/new`);
    expect(await b.page.locator('main').textContent()).toContain('Called new');
    expect(runCli(['clients', 'create', '--name', 'dots', '--id', '..'], stack.db.url).stderr).toContain('must not be "." or ".."');
    await b.context.close();
  });

  it('cannot be framed, and a cross-site form post is refused', async () => {
    const b = await signInToConsole(stack, ada, DESKTOP);
    // a page elsewhere that frames the console and posts a form to it
    await b.page.route('http://attacker.test/', (route) => route.fulfill({
      contentType: 'text/html',
      body: `<iframe src="${stack.gatehouse.url}/console"></iframe><form id="f" method="post" action="${stack.gatehouse.url}/console/keys/rotate"><input name="csrf" value="guess"></form>`,
    }));
    await b.page.goto('http://attacker.test/');
    const keysBefore = stack.cli(['keys', 'list', '--json']);
    // the frame is blocked (frame-ancestors 'none'): no Gatehouse page shows inside it, not even
    // the sign-in page the console sends a stranger to, which would show if framing were allowed
    const inner = b.page.frames().filter((f) => f !== b.page.mainFrame());
    expect(inner).toHaveLength(1);
    expect(await inner[0].locator('button, nav').count().catch(() => 0)).toBe(0);
    expect(inner[0].url().startsWith(stack.gatehouse.url)).toBe(false);
    const [posted] = await Promise.all([b.page.waitForNavigation(), b.page.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit())]);
    expect(posted!.status()).toBe(403);
    expect(stack.cli(['keys', 'list', '--json'])).toBe(keysBefore);
    await b.context.close();
  });
});
