import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Browser } from 'playwright-core';
import { ROOT } from '../support/processes.js';
import { browserAvailable, launchBrowser } from '../support/browser.js';

/**
 * `npm run dev` (scripts/dev.mjs) as a newcomer runs it, on free ports and a temporary
 * data folder: the sample app → Gatehouse's login → the "Test person" upstream → consent
 * → back in the app with tokens → /account lists the identity. Ctrl-C/SIGTERM stops all
 * three; NODE_ENV=production is refused; no server code imports the dev upstream.
 */

const DEV = join(ROOT, 'scripts', 'dev.mjs');
const describeIf = browserAvailable() ? describe : describe.skip;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Three free ports in a row, from a random start. */
async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base;
  }
  throw new Error('no three free ports in a row');
}

interface Dev {
  process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** every run, so a failed test never leaves one behind */
const started: Dev[] = [];

async function stopAll(): Promise<void> {
  await Promise.all(started.filter((d) => d.process.exitCode === null && d.process.signalCode === null).map(async (d) => {
    d.process.kill('SIGTERM');
    const timer = setTimeout(() => d.process.kill('SIGKILL'), 15_000);
    await d.exited;
    clearTimeout(timer);
  }));
}

function runDev(env: Record<string, string>): Dev {
  const child = spawn(process.execPath, [DEV], {
    cwd: ROOT,
    // what a newcomer's shell has: no NODE_ENV, no test variables
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const dev = { process: child, output: () => out, exited };
  started.push(dev);
  return dev;
}

async function ready(dev: Dev): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!dev.output().includes('Ctrl-C stops all three.')) {
    if (dev.process.exitCode !== null) throw new Error(`npm run dev exited with ${dev.process.exitCode}:\n${dev.output()}`);
    if (Date.now() > deadline) throw new Error(`npm run dev did not get ready:\n${dev.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const answers = (url: string) => fetch(url).then(() => true, () => false);

describeIf('npm run dev', () => {
  let base: number;
  let dataDir: string;
  let dev: Dev;
  /** Grace's Gatehouse subject from the first sign-in */
  let graceSub: string;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;

  beforeAll(async () => {
    base = await freePortBase();
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-dev-'));
    ({ browser, close: closeBrowser } = await launchBrowser());
  });

  afterEach(stopAll);

  afterAll(async () => {
    await closeBrowser?.();
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('signs a made-up person in to the sample app, end to end, and stops everything on SIGTERM', async () => {
    const app = `http://localhost:${base + 2}`;
    const gatehouse = `http://localhost:${base}`;
    dev = runDev({ DEV_PORT_BASE: String(base), DEV_DATA_DIR: dataDir });
    await ready(dev);
    // the few lines that say where to go
    expect(dev.output()).toContain(`Open the sample app and press "Sign in":  ${app}`);
    expect(dev.output()).toContain(`Gatehouse          ${gatehouse}`);
    expect(dev.output()).toContain(`Test person        http://localhost:${base + 1}`);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(app);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Gatehouse's login page offers the upstream by its configured name
    await page.getByRole('button', { name: 'Continue with Test person (development)' }).click();
    // the development upstream's own page: any name, any email
    await page.getByRole('heading', { name: 'Sign in as a test person' }).waitFor();
    await page.getByLabel('Name').fill('Grace Hopper');
    await page.getByLabel('Email').fill('grace@example.org');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Gatehouse's consent page
    await page.getByRole('heading', { name: 'Allow Sample app?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();

    // back in the app, with the ID token's claims and both tokens
    await page.locator('#name').waitFor();
    expect(page.url()).toBe(`${app}/`);
    expect(await page.textContent('#name')).toBe('Grace Hopper');
    expect(await page.textContent('#email')).toBe('grace@example.org');
    const claims = JSON.parse((await page.textContent('#claims'))!);
    expect(claims).toMatchObject({ iss: gatehouse, aud: 'sample-app', sub: expect.any(String) });
    graceSub = claims.sub;
    expect(await page.textContent('#access-token')).toMatch(/^received/);
    expect(await page.textContent('#refresh-token')).toBe('received');
    // the profile claims, fetched with the access token
    expect(JSON.parse((await page.textContent('#userinfo'))!)).toMatchObject({
      sub: claims.sub, name: 'Grace Hopper', email: 'grace@example.org', email_verified: true,
    });
    // the refresh token works
    await page.getByRole('button', { name: 'Refresh tokens' }).click();
    await page.getByText('used 1 time(s) for new tokens').waitFor();

    // the app links to the account page, which lists the identity (the browser is signed in there)
    await page.getByRole('link', { name: 'Your account at Gatehouse' }).click();
    await page.getByRole('heading', { name: 'Your account', level: 1 }).waitFor();
    expect(page.url()).toBe(`${gatehouse}/account`);
    expect(await page.locator('ul.identities > li > strong').allTextContents()).toEqual(['Test person (development)']);
    expect(await page.textContent('main')).toContain('grace@example.org');
    expect(await page.textContent('main')).toContain('Sample app');
    await context.close();

    // SIGTERM (what Ctrl-C's SIGINT also does) stops all three
    dev.process.kill('SIGTERM');
    expect(await dev.exited).toBe(0);
    for (const port of [base, base + 1, base + 2]) expect(await answers(`http://localhost:${port}/`)).toBe(false);
  });

  it('starts again on the same data folder: the sample app stays registered, the same person finds the same account', async () => {
    dev = runDev({ DEV_PORT_BASE: String(base), DEV_DATA_DIR: dataDir });
    await ready(dev);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`http://localhost:${base + 2}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Continue with Test person (development)' }).click();
    await page.getByLabel('Name').fill('Grace Hopper');
    await page.getByLabel('Email').fill('GRACE@example.org');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.locator('#name').waitFor();
    expect(await page.textContent('#email')).toBe('grace@example.org');
    expect(JSON.parse((await page.textContent('#claims'))!).sub).toBe(graceSub);
    await context.close();
    dev.process.kill('SIGINT');
    expect(await dev.exited).toBe(0);
  });

  it('is refused when NODE_ENV=production, with one message and exit code 1, starting nothing', async () => {
    const refused = runDev({ NODE_ENV: 'production', DEV_PORT_BASE: String(base), DEV_DATA_DIR: dataDir });
    expect(await refused.exited).toBe(1);
    expect(refused.output().trim().split('\n')).toEqual([
      'npm run dev: refused: NODE_ENV=production. This starts a test sign-in provider that lets anyone be anyone; it is for development only. Use `npm start` in production.',
    ]);
    expect(await answers(`http://localhost:${base + 1}/`)).toBe(false);
  });

  it('is never loaded by the server: nothing outside src/dev imports it', () => {
    const src = join(ROOT, 'src');
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? (['dev', 'generated'].includes(e.name) ? [] : files(join(dir, e.name))) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
    const importers = files(src).filter((f) => /from\s+'[./]+(?:\/\.\.)*\/?dev\/|import\('[./]+\/?dev\//.test(readFileSync(f, 'utf8')));
    expect(importers.map((f) => relative(src, f))).toEqual([]);
    // and it refuses production on its own, should anything ever load it
    expect(readFileSync(join(src, 'dev', 'upstream.ts'), 'utf8')).toContain("process.env.NODE_ENV === 'production'");
  });
});
