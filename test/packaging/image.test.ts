import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { POSTGRES_URL, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, ROOT } from '../support/processes.js';
import { startFakeGitHub, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { buildAsDockerfile, type PackagingBuild } from '../support/packaging-build.js';
import { EdgeBrowser, csrfOf, formActionFor, httpsEdge } from '../support/packaging-edge.js';

/**
 * The production image as shipped (issue 18): built natively the way the
 * Dockerfile builds it, outside the repository, and started from the runtime
 * stage's copy alone (NODE_ENV=production, two workers, PostgreSQL), behind an
 * https issuer, with the GitHub stand-in as the upstream. A person signs in
 * end to end and the app gets tokens; the admin CLI runs from the same copy.
 */

const KEY_ENCRYPTION_KEY = randomBytes(32).toString('base64url');
const COOKIE_KEYS = randomBytes(32).toString('base64url');

describe('the production image, built as the Dockerfile builds it and started as shipped', () => {
  let build: PackagingBuild;
  let db: TestDatabase;
  let github: FakeGitHub;
  let server: ChildProcess | undefined;
  let output = '';
  let port: number;
  let edge: ReturnType<typeof httpsEdge>;
  let callbackUrl: string;
  let appSecret: string;

  /** The CLI from the image's copy, with the image's environment. */
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [join(build.runtimeDir, 'bin/gatehouse.js'), ...args], {
      cwd: build.runtimeDir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...build.env, DATABASE_URL: db.url, KEY_ENCRYPTION_KEY },
      encoding: 'utf8',
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    build = await buildAsDockerfile();
    db = await createTestDatabase(POSTGRES_URL ? 'postgresql' : 'sqlite');
    github = await startFakeGitHub({ clientId: 'gh-image', clientSecret: 'gh-image-secret' });
    port = await freePort();
    edge = httpsEdge(port);
    callbackUrl = `http://127.0.0.1:${await freePort()}/cb`;
  }, 20 * 60_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.on('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await github?.close();
    await db?.drop();
  });

  it('runs as node, in production, with the default SQLite file on the /data volume', () => {
    const ops = build.runtime.instructions;
    expect(build.runtime.image).toBe('node:22-bookworm-slim');
    expect(build.env).toMatchObject({ NODE_ENV: 'production', DATABASE_URL: 'file:/data/gatehouse.db' });
    expect(ops.filter((i) => i.op === 'USER').at(-1)?.args).toBe('node');
    expect(ops.some((i) => i.op === 'VOLUME' && /(^|[\s"[])\/data($|[\s",\]])/.test(i.args))).toBe(true);
    expect(ops.some((i) => i.op === 'RUN' && /chown\s+node(:node)?\s+\/data\b/.test(i.args))).toBe(true);
    expect(build.cmd).toEqual(['node', 'dist/main.js']);
  });

  it('holds the runtime and nothing of the build: no sources, no dev dependencies', () => {
    const has = (p: string) => existsSync(join(build.runtimeDir, p));
    expect(['dist/main.js', 'dist/cli/index.js', 'bin/gatehouse.js', 'views/login.eta', 'views/style.css', 'package.json'].filter((p) => !has(p))).toEqual([]);
    expect(['dist/generated/sqlite/query_compiler_bg.wasm', 'dist/generated/postgresql/query_compiler_bg.wasm'].filter((p) => !has(p))).toEqual([]);
    expect(['prisma/sqlite/migrations', 'prisma/postgresql/migrations'].filter((p) => !has(p))).toEqual([]);
    expect(['src', 'test', 'scripts', 'tsconfig.json'].filter(has)).toEqual([]);
    // (typescript and prisma stay: npm keeps them as optional peers of @prisma/client)
    expect(['node_modules/jest', 'node_modules/ts-jest', 'node_modules/playwright-core', 'node_modules/fast-check', 'node_modules/autocannon'].filter(has)).toEqual([]);
    expect(['node_modules/openid-client', 'node_modules/oidc-provider', 'node_modules/better-sqlite3', 'node_modules/argon2', 'node_modules/pg'].filter((p) => !has(p))).toEqual([]);
    // the build happened outside the repository: no node_modules above it to fall back on
    expect(build.runtimeDir.startsWith(ROOT)).toBe(false);
  });

  it('migrates the fresh database and creates an app with the CLI from the image', () => {
    const migrated = cli(['migrate']);
    expect({ code: migrated.code, stderr: migrated.stderr }).toEqual({ code: 0, stderr: '' });
    const created = cli(['clients', 'create', '--json', '--name', 'Image App', '--id', 'image-app', '--grant-type', 'authorization_code', '--redirect-uri', callbackUrl]);
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
    const client = JSON.parse(created.stdout);
    expect(client).toMatchObject({ clientId: 'image-app', clientSecret: expect.any(String) });
    appSecret = client.clientSecret;
  });

  it('starts two workers in production on an https issuer and signs a person in through GitHub end to end', async () => {
    const [command, ...args] = build.cmd;
    expect(command).toBe('node');
    server = spawn(process.execPath, args, {
      cwd: build.runtimeDir,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, ...build.env,
        DATABASE_URL: db.url, PORT: String(port), WORKERS: '2', ISSUER: edge.issuer, TRUST_PROXY: 'true',
        COOKIE_KEYS, KEY_ENCRYPTION_KEY,
        GITHUB_CLIENT_ID: 'gh-image', GITHUB_CLIENT_SECRET: 'gh-image-secret', GITHUB_BASE_URL: github.baseUrl, GITHUB_API_URL: github.apiUrl,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (d) => (output += d));
    server.stderr!.on('data', (d) => (output += d));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`the image's server exited with ${server.exitCode}:\n${output.slice(-6000)}`);
      const ready = await fetch(`http://localhost:${port}/readyz`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      if (Date.now() > deadline) throw new Error(`the image's server did not become ready:\n${output.slice(-6000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // a primary with two workers
    expect(output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => /started its workers/.test(l.msg))).toMatchObject({ workers: 2 });

    const secret = appSecret;
    const rp = await oidc.discovery(new URL(edge.issuer), 'image-app', undefined, oidc.ClientSecretBasic(secret), { [oidc.customFetch]: (url, options) => edge.edgeFetch(url, options as RequestInit) });
    expect(rp.serverMetadata().issuer).toBe(edge.issuer);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const authorization = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: callbackUrl, scope: 'openid email profile', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    });
    expect(authorization.origin).toBe(edge.issuer);

    const browser = new EdgeBrowser(edge.edgeFetch);
    let { page } = await browser.follow(await browser.request(authorization), callbackUrl);
    expect(page.status).toBe(200);
    // the login page offers GitHub; pressing it goes to the stand-in and back
    let result = await browser.follow(await browser.request(formActionFor(page, /Continue with GitHub/), { csrf: csrfOf(page) }), callbackUrl);
    expect(browser.hops.some((h) => h.url.startsWith(`${github.baseUrl}/login/oauth/authorize`))).toBe(true);
    if (!result.callback) {
      // the consent page
      expect(result.page.text).toMatch(/Allow/);
      result = await browser.follow(await browser.request(formActionFor(result.page, /Allow/), { csrf: csrfOf(result.page) }), callbackUrl);
    }
    if (!result.callback) throw new Error(`no redirect to the app: ${result.page.status} at ${result.page.url}: ${result.page.text.slice(0, 500)}`);
    // the session cookies were set for the https origin (Secure cookies over the proxy)
    expect(browser.cookies(edge.issuer).length).toBeGreaterThan(0);

    const tokens = await oidc.authorizationCodeGrant(rp, result.callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(tokens.claims()).toMatchObject({ iss: edge.issuer, aud: 'image-app', sub: expect.any(String) });
    const { payload } = await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(`http://localhost:${port}/jwks`)), { issuer: edge.issuer, audience: 'image-app' });
    expect(payload.nonce).toBe(nonce);
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo).toMatchObject({ sub: tokens.claims()!.sub });
    // GitHub's token endpoint and API were reached by the image's server
    expect(github.log.some((r) => r.path === '/login/oauth/access_token')).toBe(true);
  });

  it('lists the app with the CLI from the image, on the same database and key', () => {
    const listed = cli(['clients', 'list', '--json']);
    expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ clientId: 'image-app' })]));
  });
});
