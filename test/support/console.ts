import AxeBuilder from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { createTestDatabase, type Kind, type TestDatabase } from './databases.js';
import { freePort, runCli, startServer, type RunningServer } from './processes.js';
import { launchBrowser, watchedContext, type WatchedContext } from './browser.js';

export type ConsoleBrowser = WatchedContext & { scan?: boolean };
import { startFakeGitHub, type FakeGitHub, type FakeGitHubUser } from './upstreams/fake-github.js';

/**
 * The admin console (/console) in headless Chromium against the built server:
 * a database of the given kind, a stand-in GitHub to sign in with, and people
 * who get their console role from the CLI, as an operator would give it.
 */

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 375, height: 740 };
export const WIDTHS = [['desktop', DESKTOP], ['phone', PHONE]] as const;

export interface ConsoleStack {
  db: TestDatabase;
  gatehouse: RunningServer;
  github: FakeGitHub;
  browser: Browser;
  /** the CLI against this stack's database; throws on a non-zero exit */
  cli(args: string[]): string;
  close(): Promise<void>;
}

/** A GitHub person with one verified email. */
export function person(login: string, id: number, email = `${login}@example.com`): FakeGitHubUser {
  return { id, login, name: login[0].toUpperCase() + login.slice(1), avatarUrl: '', publicEmail: null, emails: [{ email, primary: true, verified: true }] };
}

export async function startConsoleStack(kind: Kind, env: Record<string, string> = {}): Promise<ConsoleStack> {
  const db = await createTestDatabase(kind);
  const github = await startFakeGitHub({ clientId: 'gh-client', clientSecret: 'gh-secret' });
  const port = await freePort();
  const gatehouse = await startServer({
    DATABASE_URL: db.url, PORT: String(port),
    GITHUB_CLIENT_ID: 'gh-client', GITHUB_CLIENT_SECRET: 'gh-secret', GITHUB_BASE_URL: github.baseUrl, GITHUB_API_URL: github.apiUrl,
    REGISTRATION: 'initial-access-token',
    ...env,
  });
  const { browser, close: closeBrowser } = await launchBrowser();
  return {
    db, gatehouse, github, browser,
    cli(args) {
      const r = runCli(args, db.url);
      if (r.code !== 0) throw new Error(`gatehouse ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    async close() {
      await closeBrowser();
      await gatehouse.stop();
      await github.close();
      await db.drop();
    },
  };
}

/**
 * A fresh browser context of the given size on the stack's browser, watched
 * for CSP violations and errors. Its pages get the axe scan (checkPage) at the
 * phone's width on SQLite: a page renders the same on either database, and an
 * axe scan takes seconds, so each page is scanned once per test file.
 */
export async function openBrowser(stack: Pick<ConsoleStack, 'browser' | 'db'>, viewport: { width: number; height: number }): Promise<ConsoleBrowser> {
  const watched = await watchedContext(stack.browser, viewport);
  return Object.assign(watched, { scan: stack.db.kind === 'sqlite' && viewport.width === PHONE.width });
}

/**
 * Signs `who` in to the console through GitHub in a fresh browser. With
 * `role`, the CLI grants it first (the account is made by a first sign-in, so
 * a person without an account signs in once, is refused, then gets the role).
 */
export async function signInToConsole(stack: ConsoleStack, who: FakeGitHubUser, viewport: { width: number; height: number }, role?: 'admin' | 'viewer'): Promise<ConsoleBrowser> {
  const browser = await openBrowser(stack, viewport);
  const { page } = browser;
  stack.github.setUser(who);
  await page.goto(`${stack.gatehouse.url}/console`);
  await page.getByRole('button', { name: 'Continue with GitHub' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/console'));
  if (role) {
    stack.cli(['accounts', 'grant-role', who.emails[0].email, role]);
    await page.goto(`${stack.gatehouse.url}/console`);
  }
  return browser;
}

/** Every serious or critical accessibility violation on the page (axe-core), as lines. */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page } as never).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

/** Nothing wider than the viewport: no sideways scrolling of the whole page. */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/**
 * The checks every console page gets: no serious or critical accessibility
 * violation (axe, where the browser scans: see openBrowser), no sideways
 * scroll at this width, and no CSP violation or console error so far.
 */
export async function checkPage(browser: ConsoleBrowser): Promise<{ accessibility: string[]; overflow: number; problems: string[] }> {
  const accessibility = browser.scan === false ? [] : await accessibilityProblems(browser.page);
  return { accessibility, overflow: await horizontalOverflow(browser.page), problems: [...browser.problems] };
}

/**
 * The form token of this browser's console session, as the gate issued it
 * (its cookie names the session and account, then the token): what a page
 * would put in its forms, for requests made without one.
 */
export async function consoleFormToken(browser: ConsoleBrowser): Promise<string> {
  const cookie = (await browser.context.cookies()).find((c) => c.name === 'gatehouse.console-csrf');
  if (!cookie) throw new Error('no console form token: load a console page first');
  const value = decodeURIComponent(cookie.value);
  return value.slice(value.lastIndexOf('.') + 1);
}
