import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Headless Chromium from the system (Debian's `chromium`; .ci/run installs it).
 * Outside CI a machine without it skips the browser suites with one line; in CI
 * a missing browser fails.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}: .ci/run must install it`);
  process.stderr.write(`Browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)\n`);
  return false;
}

export async function launchBrowser(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      // playwright gives every launch a fresh, temporary profile
      '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

export interface WatchedContext {
  context: BrowserContext;
  page: Page;
  /** CSP violations, console errors and page errors seen so far */
  problems: string[];
}

/**
 * A browser context of the given size that reports every CSP violation (from
 * a listener added before any page script could run) and every console error.
 */
export async function watchedContext(browser: Browser, viewport: { width: number; height: number }): Promise<WatchedContext> {
  const problems: string[] = [];
  const context = await browser.newContext({ viewport });
  await context.exposeBinding('reportCspViolation', (_source, text: string) => void problems.push(`CSP: ${text}`));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { reportCspViolation(t: string): void }).reportCspViolation(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    // Chromium asks every origin for /favicon.ico, which Gatehouse does not serve; a 4xx page logs its status
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico') && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  return { context, page, problems };
}
