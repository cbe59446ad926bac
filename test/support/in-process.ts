import { createServer, type RequestListener, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createApp, type App } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { Database } from '../../src/storage/database.js';
import {
  configureTransport, toUpstreamError, upstreamFetch, UpstreamError,
  type Reauthentication, type Upstream, type UpstreamChecks, type UpstreamErrorKind, type UpstreamProfile,
} from '../../src/federation/upstream.js';
// Test data goes in through the same services the CLI calls.
import { createClient } from '../../src/services/clients.js';
import { createApi } from '../../src/services/apis.js';
import { databaseKinds, migratedDatabase, type Kind } from './databases.js';

/**
 * The in-process tier: Gatehouse built with createApp (no dist/, no child
 * process, no browser), a real temp database, fake upstreams and an injected
 * clock, driven over real HTTP by a small cookie-keeping "browser".
 */

export { configureTransport, databaseKinds, toUpstreamError, upstreamFetch, UpstreamError };
export type { Kind, UpstreamErrorKind, UpstreamProfile };

// ---------------------------------------------------------------- clock

export interface TestClock {
  now(): number;
  /** moves the clock by ms (negative to go back) */
  advance(ms: number): void;
}

/** A clock that stands still unless moved; starts at the real time. */
export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

// ---------------------------------------------------------------- HTTP servers

/** Listens on 127.0.0.1 on a free port; the handler may be attached later. */
export async function listen(handler?: RequestListener): Promise<{ server: Server; port: number; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const s = await listen();
  await s.close();
  return s.port;
}

// ---------------------------------------------------------------- fake upstream

/** What the fake does when asked: sign in as someone, or throw. */
type Failure = UpstreamErrorKind | { thrown: unknown };

export interface FakeUpstream extends Upstream {
  /** every authorizationUrl call: the checks and redirect URI Gatehouse gave, and the URL returned */
  readonly started: { checks: UpstreamChecks; redirectUri: string; url: URL; reauth?: Reauthentication }[];
  /** every finish call */
  readonly finished: { callbackUrl: URL; checks: UpstreamChecks }[];
  /** the person the next successful finish returns */
  signInAs(profile: Partial<UpstreamProfile> & { subject: string }): void;
  /** make finish throw: an UpstreamError of this kind, or `{ thrown }` as is; undefined to succeed again */
  failFinish(failure: Failure | undefined): void;
  /** make authorizationUrl throw, like failFinish */
  failStart(failure: Failure | undefined): void;
  /** where the upstream sends the browser back after the latest start: its redirect URI with code and state */
  redirectBack(params?: Record<string, string>): URL;
}

/** Only what the interface promises: Gatehouse passes its whole pending record. */
const checksOf = ({ state, nonce, codeVerifier }: UpstreamChecks): UpstreamChecks => ({ state, nonce, codeVerifier });

function raise(failure: Failure, name: string): never {
  if (typeof failure === 'object') throw failure.thrown;
  throw new UpstreamError(failure, `${name}: simulated ${failure} failure`);
}

/**
 * An upstream identity provider that never leaves the process. Its
 * authorization URL is on a host that is never fetched; the browser comes back
 * with `redirectBack()`. finish checks the code and state like a real one.
 */
export function fakeUpstream(id: string, name: string, options: { reportsAuthTime?: boolean } = {}): FakeUpstream {
  const started: FakeUpstream['started'] = [];
  const finished: FakeUpstream['finished'] = [];
  const codes = new Map<string, string>(); // code -> state it was issued for
  let profile: UpstreamProfile = { provider: id, subject: `${id}-user-1`, email: null, emailVerified: false, name: null, username: null, picture: null, raw: {} };
  let startFailure: Failure | undefined;
  let finishFailure: Failure | undefined;

  return {
    id,
    name,
    // like GitHub unless told otherwise: an OpenID Connect upstream reports auth_time
    reportsAuthTime: options.reportsAuthTime ?? false,
    started,
    finished,
    signInAs(p) {
      profile = { provider: id, email: null, emailVerified: false, name: null, username: null, picture: null, raw: { sub: p.subject }, ...p };
    },
    failFinish: (f) => void (finishFailure = f),
    failStart: (f) => void (startFailure = f),
    async authorizationUrl(checks, redirectUri, reauth) {
      if (startFailure) raise(startFailure, name);
      const url = new URL(`https://${id}.upstream.test/authorize`);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: `${id}-client`,
        redirect_uri: redirectUri,
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      }).toString();
      started.push({ checks: checksOf(checks), redirectUri, url, ...(reauth ? { reauth } : {}) });
      return url;
    },
    async finish(callbackUrl, checks) {
      finished.push({ callbackUrl, checks: checksOf(checks) });
      if (finishFailure) raise(finishFailure, name);
      const q = callbackUrl.searchParams;
      if (q.get('error')) throw new UpstreamError(q.get('error') === 'access_denied' ? 'denied' : 'oauth', `${name}: ${q.get('error')}`);
      if (q.get('state') !== checks.state) throw new UpstreamError('unexpected', `${name}: state mismatch`);
      const code = q.get('code');
      if (!code || codes.get(code) !== checks.state) throw new UpstreamError('oauth', `${name}: invalid_grant`);
      codes.delete(code); // codes are single use
      return { ...profile };
    },
    redirectBack(params) {
      const last = started.at(-1);
      if (!last) throw new Error(`${name} was never asked to start a sign-in`);
      const code = randomBytes(8).toString('hex');
      codes.set(code, last.checks.state);
      const url = new URL(last.redirectUri);
      url.search = new URLSearchParams(params ?? { code, state: last.checks.state }).toString();
      return url;
    },
  };
}

// ---------------------------------------------------------------- browser

/** One response, read whole. */
export interface Page {
  status: number;
  headers: Headers;
  /** the Location header, or null */
  location: string | null;
  text: string;
  /** the request URL */
  url: string;
}

interface Cookie {
  name: string;
  value: string;
  path: string;
  /** ms since the epoch (real time: the browser's clock) */
  expires?: number;
}

const pathMatches = (cookiePath: string, path: string) =>
  path === cookiePath || (path.startsWith(cookiePath) && (cookiePath.endsWith('/') || path[cookiePath.length] === '/'));

/**
 * A browser for one origin: keeps cookies per name and path (RFC 6265 path
 * matching, expiry, deletion), sends forms, never follows a redirect unless asked.
 */
export class Browser {
  readonly #cookies = new Map<string, Cookie>();
  constructor(readonly origin: string) {}

  /** GET or POST (a form) to a path or same-origin URL; no redirect is followed. */
  async request(target: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Page> {
    const url = new URL(target, this.origin);
    if (url.origin !== new URL(this.origin).origin) throw new Error(`this browser only talks to ${this.origin}, not ${url.origin}`);
    const headers: Record<string, string> = {};
    const cookie = this.cookiesFor(url.pathname).map((c) => `${c.name}=${c.value}`).join('; ');
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.#store(line, url.pathname);
    return { status: res.status, headers: res.headers, location: res.headers.get('location'), text: await res.text(), url: url.href };
  }

  get(target: string | URL): Promise<Page> {
    return this.request(target);
  }

  post(target: string | URL, form: Record<string, string>): Promise<Page> {
    return this.request(target, { form });
  }

  /**
   * Follows 30x redirects while they stay on this origin. Returns every page on
   * the way, the last one first found to be a non-redirect or an off-origin redirect.
   */
  async follow(page: Page, max = 10): Promise<{ last: Page; hops: Page[] }> {
    const hops: Page[] = [page];
    let current = page;
    while (current.status >= 300 && current.status < 400 && current.location) {
      const next = new URL(current.location, current.url);
      if (next.origin !== new URL(this.origin).origin) break;
      if (hops.length > max) throw new Error(`more than ${max} redirects from ${page.url}`);
      current = await this.get(next);
      hops.push(current);
    }
    return { last: current, hops };
  }

  /** Live cookies the browser would send to this path, longest path first. */
  cookiesFor(path: string): Cookie[] {
    const now = Date.now();
    return [...this.#cookies.values()]
      .filter((c) => (c.expires === undefined || c.expires > now) && pathMatches(c.path, path))
      .sort((a, b) => b.path.length - a.path.length);
  }

  /** A cookie's value as the browser would send it to `path`. */
  cookie(name: string, path = '/'): string | undefined {
    return this.cookiesFor(path).find((c) => c.name === name)?.value;
  }

  /** Drops cookies by name (every path), like clearing them in a real browser. */
  forget(name: string): void {
    for (const [key, c] of this.#cookies) if (c.name === name) this.#cookies.delete(key);
  }

  /** Every cookie, to put back later with restore() (an attacker keeping a copy). */
  snapshot(): Cookie[] {
    return [...this.#cookies.values()].map((c) => ({ ...c }));
  }

  restore(cookies: Cookie[]): void {
    this.#cookies.clear();
    for (const c of cookies) this.#cookies.set(`${c.name}\0${c.path}`, { ...c });
  }

  #store(line: string, requestPath: string): void {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    // RFC 6265 §5.1.4: the default path is the request path's directory
    let path = requestPath.slice(0, Math.max(requestPath.lastIndexOf('/'), 1));
    let expires: number | undefined;
    for (const attribute of attributes) {
      const [key, ...rest] = attribute.split('=');
      const v = rest.join('=');
      if (/^path$/i.test(key) && v.startsWith('/')) path = v;
      else if (/^expires$/i.test(key)) expires = Date.parse(v);
      else if (/^max-age$/i.test(key)) expires = Date.now() + Number(v) * 1000;
    }
    const key = `${name}\0${path}`;
    if (expires !== undefined && expires <= Date.now()) this.#cookies.delete(key);
    else this.#cookies.set(key, { name, value, path, expires });
  }
}

// ---------------------------------------------------------------- the app

export interface StartOptions {
  /** extra environment for parseConfig (ISSUER and DATABASE_URL are set here) */
  env?: Record<string, string>;
  upstreams?: Upstream[];
  now?: () => number;
  /** the database kind; SQLite unless a test is about storage */
  kind?: Kind;
}

export interface TestClient {
  clientId: string;
  clientSecret: string;
  name: string;
  redirectUri: string;
}

export interface InProcess {
  /** the issuer: http://localhost:<port> */
  url: string;
  app: App;
  database: Database;
  kind: Kind;
  /** the test database's URL, for the CLI (runCli) against the same data */
  databaseUrl: string;
  /** a fresh browser (empty cookie jar) for this server */
  browser(): Browser;
  /** an admin-created client, as `gatehouse clients create` makes one */
  createClient(options?: { name?: string; redirectUri?: string; firstParty?: boolean; resources?: string[]; grantTypes?: string[]; pkce?: 'required' | 'optional' }): Promise<TestClient>;
  /** an admin-created API, as `gatehouse resources create` makes one */
  createApi(identifier: string, name: string, scopes: string[]): Promise<void>;
  /** an initial access token for POST /reg, made by oidc-provider as the CLI does */
  initialAccessToken(options?: { singleUse?: boolean }): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds and serves Gatehouse in this process. The port is bound first so
 * that the issuer (http://localhost:<port>) is known before the config is built.
 */
export async function startInProcess(options: StartOptions = {}): Promise<InProcess> {
  const kind = options.kind ?? 'sqlite';
  const http = await listen();
  const url = `http://localhost:${http.port}`;
  const db = await migratedDatabase(kind);
  let app: App | undefined;
  try {
    const config = parseConfig(
      { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...options.env, ISSUER: url, DATABASE_URL: db.testDb.url },
      () => randomBytes(32).toString('base64url'),
    );
    app = await createApp({
      config,
      database: db.database,
      logger: createLogger('silent'),
      now: options.now,
      upstreams: new Map((options.upstreams ?? []).map((u) => [u.id, u])),
    });
    await app.start();
    http.server.on('request', app.callback());
  } catch (err) {
    await app?.stop();
    await http.close();
    await db.close();
    throw err;
  }
  const started = app;
  const prisma = db.database.prisma;

  return {
    url,
    app: started,
    database: db.database,
    kind,
    databaseUrl: db.testDb.url,
    browser: () => new Browser(url),
    async createClient(o = {}) {
      const clientId = `app-${randomBytes(6).toString('hex')}`;
      const name = o.name ?? 'Sample App';
      const redirectUri = o.redirectUri ?? 'https://app.example.com/cb';
      const grantTypes = o.grantTypes ?? ['authorization_code', 'refresh_token'];
      const { secret } = await createClient(prisma, {
        clientId,
        name,
        tokenEndpointAuthMethod: 'client_secret_basic',
        grantTypes,
        redirectUris: grantTypes.includes('authorization_code') ? [redirectUri] : [],
        resources: o.resources ?? [],
        firstParty: o.firstParty ?? false,
        ...(o.pkce ? { pkce: o.pkce } : {}),
      });
      // what the change poll would do within CHANGE_POLL_MS
      await started.cache.refresh();
      return { clientId, clientSecret: secret!, name, redirectUri };
    },
    async createApi(identifier, name, scopes) {
      await createApi(prisma, { identifier, name, scopes });
      await started.cache.refresh();
    },
    async initialAccessToken(o = {}) {
      return new started.provider.InitialAccessToken(o.singleUse ? { policies: ['single-use'] } : {}).save();
    },
    async close() {
      await started.stop();
      await http.close();
      await db.close();
    },
  };
}

// ---------------------------------------------------------------- flows

/** The CSRF token in a page's forms. */
export function csrfOf(page: Page): string {
  const m = /name="csrf" value="([^"]+)"/.exec(page.text);
  if (!m) throw new Error(`no CSRF token on ${page.url} (${page.status}): ${page.text.slice(0, 300)}`);
  return m[1];
}

/** The page's <main> as plain text (tags dropped, whitespace collapsed, entities for ' and " decoded). */
export function textOf(page: Page): string {
  const main = /<main[^>]*>([\s\S]*)<\/main>/.exec(page.text)?.[1] ?? page.text;
  return main.replace(/<[^>]+>/g, ' ').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();
}

/** The href of the page's "Go back" link, if any. */
export function backLinkOf(page: Page): string | undefined {
  return /<a [^>]*href="([^"]+)"[^>]*>Go back<\/a>/.exec(page.text)?.[1];
}

export interface Authorization {
  /** the interaction the person is sent to */
  uid: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  client: TestClient;
}

/**
 * An app sends the browser to /auth (code + PKCE; scope "openid email profile"
 * unless `extra` says otherwise); Gatehouse answers 303 to /interaction/<uid>.
 */
export async function authorize(browser: Browser, client: TestClient, extra: Record<string, string> = {}): Promise<Authorization> {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params = new URLSearchParams({
    client_id: client.clientId,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  const res = await browser.get(`/auth?${params}`);
  const uid = res.status === 303 ? /^\/interaction\/([^/?]+)$/.exec(res.location ?? '')?.[1] : undefined;
  if (!uid) throw new Error(`/auth answered ${res.status} ${res.location ?? ''}: ${res.text.slice(0, 300)}`);
  return { uid, state, nonce, codeVerifier, client };
}

/** Opens the login page and presses "Continue with <upstream>". */
export async function chooseUpstream(browser: Browser, uid: string, upstreamId: string): Promise<Page> {
  const login = await browser.get(`/interaction/${uid}`);
  return browser.post(`/interaction/${uid}/login/${upstreamId}`, { csrf: csrfOf(login) });
}

/**
 * The whole way from /auth to the app's redirect URI: choose the upstream, come
 * back from it, and allow on the consent page when it is shown (a remembered
 * consent skips it). Returns the URL the app receives.
 */
export async function signIn(
  browser: Browser, client: TestClient, upstream: FakeUpstream, extra: Record<string, string> = {},
): Promise<{ authorization: Authorization; callback: URL; askedConsent: boolean }> {
  const authorization = await authorize(browser, client, extra);
  await chooseUpstream(browser, authorization.uid, upstream.id);
  let { last } = await browser.follow(await browser.get(upstream.redirectBack()));
  const askedConsent = last.status === 200 && /^\/interaction\/[^/]+$/.test(new URL(last.url).pathname);
  if (askedConsent) {
    ({ last } = await browser.follow(await browser.post(`${new URL(last.url).pathname}/confirm`, { csrf: csrfOf(last) })));
  }
  if (!last.location) throw new Error(`expected a redirect to the app, got ${last.status} at ${last.url}: ${textOf(last)}`);
  return { authorization, callback: new URL(last.location), askedConsent };
}

/** A relying party (openid-client) for a client of this server. */
export function relyingParty(server: InProcess, client: TestClient): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(server.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** The app's side of the end: exchanges the code (PKCE, state, nonce checked by openid-client). */
export async function exchangeCode(server: InProcess, authorization: Authorization, callback: URL) {
  const rp = await relyingParty(server, authorization.client);
  const tokens = await oidc.authorizationCodeGrant(rp, callback, {
    pkceCodeVerifier: authorization.codeVerifier,
    expectedState: authorization.state,
    expectedNonce: authorization.nonce,
  });
  return { rp, tokens };
}

// ---------------------------------------------------------------- JSON endpoints

export interface JsonResponse {
  status: number;
  headers: Headers;
  /** parsed JSON, or the raw text when it is not JSON */
  body: any;
  /** the raw text */
  raw: string;
}

/** A JSON request without cookies (the registration API); `body` may be a string, sent as is. */
export async function jsonRequest(
  url: string,
  init: { method?: string; body?: unknown; token?: string; contentType?: string } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const raw = await res.text();
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body, raw };
}
