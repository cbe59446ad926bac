import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Browser } from 'playwright-core';
import { POSTGRES_URL, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually } from '../support/gatehouse.js';
import { browserAvailable, launchBrowser } from '../support/browser.js';
import { startApp, type AppServer } from '../support/apps.js';
import { defaultGitHubUser, startFakeGitHub, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { person } from '../support/console.js';
import { nginxAvailable, startNginx, type Balancer } from '../support/nginx.js';
import { redisAvailable, startRedis, type TestRedis } from '../support/redis.js';

/**
 * A fleet of real parts: nginx round-robin in front of two Gatehouse
 * instances, each with WORKERS=2, on one database (PostgreSQL when the tests
 * have one) and one Redis, with no sticky sessions.
 */

const API = 'https://fleet.example.com';
const OPAQUE_API = 'https://fleet-opaque.example.com';
const runs = browserAvailable() && nginxAvailable() && redisAvailable();

/** A token request on a fresh connection: status and body. */
function tokenRequest(port: number, clientId: string, secret: string, resource: string): Promise<{ status: number; body: Record<string, any> }> {
  const body = `grant_type=client_credentials&resource=${encodeURIComponent(resource)}`;
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/token', agent: false,
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let parsed = {};
        try {
          parsed = JSON.parse(text);
        } catch {
          // a balancer error page
        }
        resolve({ status: res.statusCode!, body: parsed });
      });
    });
    // a connection cut by a dying instance is an answer too: not a 200
    req.on('error', () => resolve({ status: 0, body: {} }));
    req.end(body);
  });
}

const post = async (url: string, auth: [string, string], form: Record<string, string>) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
};

(runs ? describe : describe.skip)('a fleet behind nginx: two instances x two workers, one database, one Redis', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let github: FakeGitHub;
  let app: AppServer;
  let balancer: Balancer;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  const instances: RunningServer[] = [];
  let issuer: string;
  let service: { clientId: string; clientSecret: string };
  let webapp: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    db = await createTestDatabase(POSTGRES_URL ? 'postgresql' : 'sqlite');
    redis = await startRedis();
    github = await startFakeGitHub({ clientId: 'gh-client', clientSecret: 'gh-secret' });
    app = await startApp();
    const balancerPort = await freePort();
    issuer = `http://localhost:${balancerPort}`;
    createApi(db.url, ['--identifier', API, '--scope', 'read']);
    createApi(db.url, ['--identifier', OPAQUE_API, '--format', 'opaque', '--scope', 'read']);
    service = createClient(db.url, ['--name', 'fleet service', '--id', 'fleet-service', '--resource', API, '--resource', OPAQUE_API]);
    webapp = createClient(db.url, ['--name', 'Fleet App', '--id', 'fleet-app', '--grant-type', 'authorization_code', '--redirect-uri', `${app.url}/cb`]);
    const env = {
      DATABASE_URL: db.url, ISSUER: issuer, WORKERS: '2', REDIS_URL: redis.url, TRUST_PROXY: 'true',
      COOKIE_KEYS: 'fleet-cookie-key-0123456789abcdefghijkl', KEY_PUBLISH_LEAD: '3', SECRET_FAILURE_LIMIT: '4',
      GITHUB_CLIENT_ID: 'gh-client', GITHUB_CLIENT_SECRET: 'gh-secret', GITHUB_BASE_URL: github.baseUrl, GITHUB_API_URL: github.apiUrl,
    };
    instances.push(...(await Promise.all([0, 1].map(() => startServer(env)))));
    balancer = await startNginx(instances.map((i) => i.port), balancerPort);
    ({ browser, close: closeBrowser } = await launchBrowser());
  });
  afterAll(async () => {
    await closeBrowser?.();
    await balancer?.stop();
    await Promise.all(instances.map((i) => i.stop()));
    await Promise.all([github?.close(), app?.close(), redis?.stop()]);
    await db?.drop();
  });

  /** How many requests for paths matching `pattern` an instance logged. */
  const served = (instance: RunningServer, pattern: RegExp) =>
    instance.output().split('\n').filter((l) => l.includes('"msg":"request"') && pattern.test(JSON.parse(l).path)).length;

  /** A browser sign-in through the balancer, as the fleet's web app: its tokens. */
  async function signIn(): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    const rp = await oidc.discovery(new URL(issuer), webapp.clientId, undefined, oidc.ClientSecretBasic(webapp.clientSecret), { execute: [oidc.allowInsecureRequests] });
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: `${app.url}/cb`, scope: 'openid email', state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    const hits = app.hits.length;
    await page.goto(url.href);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    const allow = page.getByRole('button', { name: 'Allow' });
    // the consent is remembered after the first sign-in
    if (await allow.isVisible({ timeout: 2000 }).catch(() => false)) await allow.click();
    const callback = await app.waitFor('/cb', hits);
    await context.close();
    return oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
  }

  it('completes a browser sign-in through GitHub while its steps land on both instances', async () => {
    const before = instances.map((i) => served(i, /^\/(interaction|oauth2|auth)/));
    const tokens = await signIn();
    expect(tokens.claims()).toMatchObject({ iss: issuer, aud: webapp.clientId, sub: expect.any(String) });
    // round robin, no sticky sessions: both instances served steps of this one sign-in
    const after = instances.map((i) => served(i, /^\/(interaction|oauth2|auth)/));
    expect(after[0]).toBeGreaterThan(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
  });

  it("answers a person's token from what each request reads, so an account disabled on one node is refused by the next request on any", async () => {
    const tokens = await signIn();
    const userinfo = (port: number) => fetch(`http://127.0.0.1:${port}/me`, { headers: { authorization: `Bearer ${tokens.access_token}`, host: new URL(issuer).host } });
    // each instance reads the token with its grant, session and account in one statement
    for (const i of instances) expect((await userinfo(i.port)).status).toBe(200);
    const sub = tokens.claims()!.sub;
    expect(runCli(['accounts', 'disable', sub], db.url).code).toBe(0);
    // no cache survives a request: the very next one, on either instance, finds the account disabled
    for (const i of instances) expect((await userinfo(i.port)).status).toBe(401);
    expect(runCli(['accounts', 'enable', sub], db.url).code).toBe(0);
  });

  it('refuses a console role removed, or an account disabled, on the next request whichever instance serves it', async () => {
    const answered = (instance: RunningServer, status: number) =>
      instance.output().split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l)).filter((l) => l.path === '/console' && l.status === status).length;
    github.setUser(person('cora', 4001, 'cora@fleet.example'));
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${issuer}/console`);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    await page.getByRole('heading', { name: 'No access to the console' }).waitFor();
    expect(runCli(['accounts', 'grant-role', 'cora@fleet.example', 'viewer'], db.url).code).toBe(0);
    const before = instances.map((i) => answered(i, 200));
    // round robin: four loads reach both instances, and each reads the role live
    for (let n = 0; n < 4; n += 1) expect((await page.reload())!.status()).toBe(200);
    instances.forEach((i, n) => expect(answered(i, 200)).toBeGreaterThan(before[n]));

    expect(runCli(['accounts', 'revoke-role', 'cora@fleet.example'], db.url).code).toBe(0);
    const refusedBefore = instances.map((i) => answered(i, 403));
    for (let n = 0; n < 4; n += 1) expect((await page.reload())!.status()).toBe(403);
    instances.forEach((i, n) => expect(answered(i, 403)).toBeGreaterThan(refusedBefore[n]));

    expect(runCli(['accounts', 'grant-role', 'cora@fleet.example', 'admin'], db.url).code).toBe(0);
    expect((await page.reload())!.status()).toBe(200);
    const { id } = JSON.parse(runCli(['accounts', 'list', '--json', '--email', 'cora@fleet.example'], db.url).stdout)[0];
    expect(runCli(['accounts', 'disable', id], db.url).code).toBe(0);
    // disabling ends the account's sessions: no instance shows the console again
    for (let n = 0; n < 4; n += 1) {
      await page.goto(`${issuer}/console`);
      expect(await page.locator('nav[aria-label=Console]').count()).toBe(0);
    }
    expect(runCli(['accounts', 'enable', id], db.url).code).toBe(0);
    await context.close();
    github.setUser(defaultGitHubUser);
  });

  it('issues a token on one instance that the other verifies, introspects and revokes', async () => {
    const [a, b] = instances;
    const jwt = await tokenRequest(a.port, service.clientId, service.clientSecret, API);
    expect(jwt.status).toBe(200);
    await expect(jwtVerify(jwt.body.access_token, createRemoteJWKSet(new URL(`${b.url}/jwks`)), { issuer, audience: API })).resolves.toBeDefined();

    const opaque = await tokenRequest(a.port, service.clientId, service.clientSecret, OPAQUE_API);
    expect(opaque.status).toBe(200);
    const auth: [string, string] = [service.clientId, service.clientSecret];
    expect((await post(`${b.url}/token/introspection`, auth, { token: opaque.body.access_token })).body).toMatchObject({ active: true, aud: OPAQUE_API });
    expect((await post(`${b.url}/token/revocation`, auth, { token: opaque.body.access_token })).status).toBe(200);
    expect((await post(`${a.url}/token/introspection`, auth, { token: opaque.body.access_token })).body).toEqual({ active: false });
  });

  it('rotates keys live through the balancer: published everywhere first, then signing everywhere, old tokens still valid', async () => {
    const kidOf = async () => JSON.parse(Buffer.from((await tokenRequest(balancer.port, service.clientId, service.clientSecret, API)).body.access_token.split('.')[0], 'base64url').toString()).kid as string;
    const old = await tokenRequest(balancer.port, service.clientId, service.clientSecret, API);
    const env = { KEY_PUBLISH_LEAD: '3' };
    expect(runCli(['keys', 'rotate'], db.url, { env }).code).toBe(0);
    await eventually(async () => (await Promise.all([1, 2, 3, 4].map(kidOf))).every((k) => k !== JSON.parse(Buffer.from(old.body.access_token.split('.')[0], 'base64url').toString()).kid), 'the first rotation to sign');
    const current = await kidOf();
    // a longer lead for the second rotation: the key the first one published must still be waiting
    // to sign however long the first took to reach every node on a loaded machine
    const second = runCli(['keys', 'rotate', '--json'], db.url, { env: { KEY_PUBLISH_LEAD: '8' } });
    const next = (second.json() as { kid: string; alg: string; stage: string; until: string | null }[]).find((k) => k.alg === 'ES256' && k.stage === 'published' && k.until)!;
    for (const i of instances) {
      await eventually(async () => ((await (await fetch(`${i.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.some((k) => k.kid === next.kid), 'the new key in every JWKS');
    }
    if (Date.now() < Date.parse(next.until!) - 500) expect(await kidOf()).toBe(current);
    await eventually(async () => (await Promise.all([1, 2, 3, 4, 5, 6].map(kidOf))).every((k) => k === next.kid), 'the new key to sign everywhere', 20_000);
    for (const i of instances) {
      await expect(jwtVerify(old.body.access_token, createRemoteJWKSet(new URL(`${i.url}/jwks`)), { audience: API })).resolves.toBeDefined();
    }
  });

  it('limits wrong secrets across both instances at the configured count, without locking out a correct client at the same address', async () => {
    const target = createClient(db.url, ['--name', 'fleet target', '--resource', API]);
    await eventually(async () => (await tokenRequest(balancer.port, target.clientId, target.clientSecret, API)).status === 200, 'the client to be known');
    const statuses = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await tokenRequest(balancer.port, target.clientId, `wrong-${i}`, API)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    expect((await tokenRequest(balancer.port, service.clientId, service.clientSecret, API)).status).toBe(200);
  });

  it('keeps serving when one instance is killed with SIGKILL under load, and every token that got a 200 is still valid', async () => {
    const [victim] = instances;
    const tokens: string[] = [];
    const failures: number[] = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const r = await tokenRequest(balancer.port, service.clientId, service.clientSecret, OPAQUE_API);
        if (r.status === 200) tokens.push(r.body.access_token);
        else failures.push(r.status);
      }
    };
    const loops = [1, 2, 3, 4].map(loop);
    await new Promise((r) => setTimeout(r, 1_000));
    const killedAt = tokens.length;
    // the whole instance dies at once: its primary and its workers
    const pids = [victim.process.pid!, ...execFileSync('pgrep', ['-P', String(victim.process.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number)];
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2_000));
    stop = true;
    await Promise.all(loops);
    // the survivor kept issuing after the kill; at most the requests in flight on the victim failed
    expect(tokens.length - killedAt).toBeGreaterThan(20);
    // only requests in flight on the victim failed: a cut connection (0) or the balancer's 502
    expect(failures.filter((status) => status !== 0 && status !== 502)).toEqual([]);
    expect(failures.length).toBeLessThanOrEqual(20);
    // no token that got a 200 was lost: the survivor finds every one of them active
    const survivor = instances[1];
    const auth: [string, string] = [service.clientId, service.clientSecret];
    const lost = [];
    for (const t of tokens) if (!(await post(`${survivor.url}/token/introspection`, auth, { token: t })).body.active) lost.push(t);
    expect({ issued: tokens.length, lost: lost.length }).toEqual({ issued: tokens.length, lost: 0 });
  });
});
