// The flows bench/run.mjs measures. Each server it loads is (a) raw oidc-provider
// (bench/raw-provider.mjs) or Gatehouse, set up with the same clients and APIs; a flow is:
//   describe     what one request (or sign-in) is, in (a) and in Gatehouse
//   goals        minimum req/s ratios (issue 20): 'c/p' (c) PostgreSQL to (p) plain oidc-provider on
//                PostgreSQL, 'c/a' (c) to (a) raw in memory, 'b/a' (b) SQLite to (a)
//   prepare(s)   once per server before any load: pools of tokens, checked
//   check(s)     one request that must succeed with the right shape, before any load
//   round(s)     before each load: single-use material (codes) for that load, made outside it
//   load(s, t)   the load for t seconds (or until the round's material is used up);
//                resolves to { total, seconds, p50, p99, bad, badDetail }
import { createHash, randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { median } from './lib.mjs';

export const JWT_API = 'https://bench.example.com';
export const OPAQUE_API = 'https://opaque.bench.example.com';
export const SCOPE = 'read';
export const REDIRECT_URI = 'http://localhost:9/bench/callback';
const CONNECTIONS = 32;
/** opaque tokens introspected in turn, and access tokens for userinfo */
const POOL = 500;
/** sign-ins in flight at once in the sign-in flow */
const SIGN_IN_CONCURRENCY = 8;
/** refresh tokens in circulation: each request takes one and puts back its successor */
const REFRESH_POOL = 4 * CONNECTIONS;

export const basic = ({ id, secret }) =>
  // RFC 6749 §2.3.1: id and secret are form-encoded before base64
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const formHeaders = (client) => ({ 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) });
const form = (fields) => new URLSearchParams(fields).toString();

// ------------------------------------------------------------ a browser, for the flows that sign in

/**
 * Cookies of one browser session, by name (the flows below run one step at a time, so a cookie
 * never has two live paths), sent only to the server under test; never follows a redirect itself.
 */
class Browser {
  #cookies = new Map();
  constructor(origin) { this.origin = origin; }

  /**
   * Another tab of the same session: the cookies so far, then its own. Only for requests without an
   * interaction: finishing one gives the session a new id, which the other tabs would not see.
   */
  tab() {
    const tab = new Browser(this.origin);
    tab.#cookies = new Map(this.#cookies);
    return tab;
  }

  async fetch(url, init = {}) {
    const own = url.origin === this.origin;
    const headers = { ...init.headers };
    if (own && this.#cookies.size) headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    if (own) {
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        const expired = /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0\b/i.test(line);
        if (expired) this.#cookies.delete(pair.slice(0, eq));
        else this.#cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    }
    return res;
  }
}

// One PKCE pair (RFC 7636, S256) for every code: each code is single-use anyway.
const VERIFIER = randomBytes(32).toString('base64url');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

/**
 * From /auth to the code at the app's redirect URI, the way a browser goes: redirects are
 * followed (to the upstream stand-in too), and a page with a form is answered as a person would:
 * "Continue with GitHub" on the login page, "Allow" on the consent page.
 */
async function authorizeCode(s, browser, { scope = 'openid profile email', prompt } = {}) {
  const state = Math.random().toString(36).slice(2);
  const params = { client_id: s.clients.web.id, response_type: 'code', redirect_uri: REDIRECT_URI, scope, state, code_challenge: CHALLENGE, code_challenge_method: 'S256', ...(prompt && { prompt }) };
  let url = new URL(`/auth?${form(params)}`, s.url);
  let res = await browser.fetch(url);
  for (let step = 0; step < 15; step++) {
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url);
      if (url.href.startsWith(REDIRECT_URI)) {
        const code = url.searchParams.get('code');
        if (!code || url.searchParams.get('state') !== state) throw new Error(`${s.label}: the app got ${url.search}`);
        return code;
      }
      res = await browser.fetch(url);
      continue;
    }
    const page = await res.text();
    const action = res.status === 200 && (/action="([^"]*\/login\/github)"/.exec(page) ?? /action="([^"]*\/confirm)"/.exec(page))?.[1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
    if (!action || !csrf) throw new Error(`${s.label}: ${url.pathname} answered ${res.status}: ${textOf(page).slice(0, 300)}`);
    url = new URL(action, url);
    res = await browser.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ csrf }) });
  }
  throw new Error(`${s.label}: more than 15 steps from /auth`);
}

/** A page's body as one line of text. */
const textOf = (html) => (/<body[^>]*>([\s\S]*)<\/body>/.exec(html)?.[1] ?? html).replace(/<style[\s\S]*?<\/style>|<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();

/** The app's token request for a code; the JSON answer. */
async function redeem(s, code) {
  const res = await fetch(`${s.url}/token`, {
    method: 'POST', headers: formHeaders(s.clients.web),
    body: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: VERIFIER }),
  });
  const json = await res.json().catch(() => ({}));
  if (res.status !== 200 || !json.access_token || !json.id_token) throw new Error(`${s.label}: code redemption gave ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Runs `fn` n times, `width` at a time; results in order. */
async function pooled(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

/** The signed-in browser session that makes codes without a login (the first sign-in asks consent). */
async function signedIn(s) {
  if (!s.browser) {
    s.browser = new Browser(new URL(s.url).origin);
    await authorizeCode(s, s.browser, { scope: 'openid profile email offline_access', prompt: 'consent' });
  }
  return s.browser;
}

// ------------------------------------------------------------ loads

/**
 * autocannon over CONNECTIONS connections, its result in the shape measure() takes. Every request
 * gets an onResponse that keeps the first non-2xx answer, so that an error says what it was.
 */
async function cannon(opts) {
  let firstBad;
  const requests = opts.requests.map((r) => ({
    ...r,
    onResponse: (status, body, context, headers) => {
      if (status >= 300) firstBad ??= `${status} ${String(body).slice(0, 200)}`;
      else r.onResponse?.(status, body, context, headers);
    },
  }));
  const r = await autocannon({ connections: CONNECTIONS, ...opts, requests });
  return {
    total: r.requests.total, seconds: r.duration, p50: r.latency.p50, p99: r.latency.p99, bad: r.non2xx + r.errors + r.timeouts,
    badDetail: `${r.non2xx} non-2xx, ${r.errors} socket errors, ${r.timeouts} timeouts${firstBad ? `; the first: ${firstBad}` : ''}`,
  };
}

/** POSTs form bodies to one path; `body()` gives each request's body; `onBody` sees each 2xx answer. */
const formLoad = (s, seconds, { path, client, body, onBody, amount }) => cannon({
  url: s.url, ...(amount ? { amount } : { duration: seconds }),
  requests: [{
    method: 'POST', path, headers: formHeaders(client),
    setupRequest: (req) => ({ ...req, body: body() }),
    ...(onBody && { onResponse: (status, resBody) => onBody(resBody) }),
  }],
});

// ------------------------------------------------------------ the flows

const clientCredentials = {
  name: 'client_credentials',
  describe: 'POST /token grant_type=client_credentials&resource=<JWT API>&scope=read (Basic auth): an ES256 JWT access token',
  goals: { 'c/p': 1.0, 'c/a': 0.9, 'b/a': 0.95 },
  async check(s) {
    const res = await fetch(`${s.url}/token`, { method: 'POST', headers: formHeaders(s.clients.service), body: ccBody(JWT_API) });
    const json = await res.json().catch(() => ({}));
    if (res.status !== 200 || !json.access_token) throw new Error(`${s.label}: token request gave ${res.status}: ${JSON.stringify(json)}`);
    const header = JSON.parse(Buffer.from(json.access_token.split('.')[0], 'base64url').toString());
    if (header.alg !== 'ES256' || header.typ !== 'at+jwt') throw new Error(`${s.label}: expected an ES256 at+jwt, got ${JSON.stringify(header)}`);
  },
  load: (s, seconds) => formLoad(s, seconds, { path: '/token', client: s.clients.service, body: () => ccBody(JWT_API) }),
};
function ccBody(resource) {
  return form({ grant_type: 'client_credentials', resource, scope: SCOPE });
}

const introspection = {
  name: 'introspection',
  describe: `POST /token/introspection token=<one of ${POOL} opaque access tokens> (no token_type_hint), by the client they were issued to`,
  goals: { 'c/p': 1.2, 'c/a': 0.7, 'b/a': 0.8 },
  async prepare(s) {
    s.opaque = await pooled(POOL, 8, async () => {
      const res = await fetch(`${s.url}/token`, { method: 'POST', headers: formHeaders(s.clients.service), body: ccBody(OPAQUE_API) });
      return (await res.json()).access_token;
    });
  },
  async check(s) {
    const res = await fetch(`${s.url}/token/introspection`, { method: 'POST', headers: formHeaders(s.clients.service), body: form({ token: s.opaque[0] }) });
    const json = await res.json().catch(() => ({}));
    if (res.status !== 200 || json.active !== true || json.aud !== OPAQUE_API) throw new Error(`${s.label}: introspection gave ${res.status}: ${JSON.stringify(json)}`);
  },
  load(s, seconds) {
    let next = 0;
    return formLoad(s, seconds, { path: '/token/introspection', client: s.clients.service, body: () => form({ token: s.opaque[next++ % POOL] }) });
  },
};

const refreshToken = {
  name: 'refresh_token',
  describe: `POST /token grant_type=refresh_token (Basic auth), rotation on: each request spends one of ${REFRESH_POOL} live refresh tokens and puts back its successor; answers an opaque access token, an ID token and the new refresh token`,
  goals: { 'c/p': 1.2, 'c/a': 0.6, 'b/a': 0.7 },
  async prepare(s) {
    s.refresh = [];
    await this.round(s);
  },
  /** Tops the pool up: a load that ends drops the tokens of the requests in flight. */
  async round(s) {
    // offline_access needs prompt=consent on every request (OpenID Connect Core §11), so each token
    // takes a sign-in: in a browser session of its own, since finishing one renews the session's id
    const origin = new URL(s.url).origin;
    const more = await pooled(REFRESH_POOL - s.refresh.length, 4, async () => (await redeem(s, await authorizeCode(s, new Browser(origin), { scope: 'openid profile email offline_access', prompt: 'consent' }))).refresh_token);
    if (more.some((t) => !t)) throw new Error(`${s.label}: a code with offline_access gave no refresh token`);
    s.refresh.push(...more);
  },
  async check(s) {
    const token = s.refresh.shift();
    const res = await fetch(`${s.url}/token`, { method: 'POST', headers: formHeaders(s.clients.web), body: form({ grant_type: 'refresh_token', refresh_token: token }) });
    const json = await res.json().catch(() => ({}));
    if (res.status !== 200 || !json.refresh_token || json.refresh_token === token || !json.id_token) throw new Error(`${s.label}: refresh gave ${res.status}: ${JSON.stringify(json)}`);
    s.refresh.push(json.refresh_token);
  },
  load(s, seconds) {
    return formLoad(s, seconds, {
      path: '/token', client: s.clients.web,
      body: () => form({ grant_type: 'refresh_token', refresh_token: s.refresh.shift() }),
      onBody: (text) => s.refresh.push(JSON.parse(text).refresh_token),
    });
  },
};

const authorizationCode = {
  name: 'authorization_code',
  describe: 'POST /token grant_type=authorization_code with the PKCE verifier (Basic auth): codes made before each load by a signed-in browser with a remembered consent; answers an opaque access token and an ID token',
  goals: { 'c/p': 1.2, 'c/a': 0.6, 'b/a': 0.75 },
  async prepare(s) { await signedIn(s); },
  async check(s) { await redeem(s, await authorizeCode(s, s.browser.tab())); },
  async round(s, count) {
    s.codes = await pooled(count, 8, () => authorizeCode(s, s.browser.tab()));
  },
  load(s) {
    let next = 0;
    return formLoad(s, 0, {
      path: '/token', client: s.clients.web, amount: s.codes.length,
      body: () => form({ grant_type: 'authorization_code', code: s.codes[next++], redirect_uri: REDIRECT_URI, code_verifier: VERIFIER }),
    });
  },
};

const userinfo = {
  name: 'userinfo',
  describe: `GET /me with Authorization: Bearer <one of ${POOL} opaque access tokens from the code flow> (scope openid profile email)`,
  goals: { 'c/p': 1.2, 'c/a': 0.6, 'b/a': 0.8 },
  async prepare(s) {
    await signedIn(s);
    s.bearer = await pooled(POOL, 8, async () => (await redeem(s, await authorizeCode(s, s.browser.tab()))).access_token);
  },
  async check(s) {
    const res = await fetch(`${s.url}/me`, { headers: { authorization: `Bearer ${s.bearer[0]}` } });
    const json = await res.json().catch(() => ({}));
    if (res.status !== 200 || !json.sub || !json.email) throw new Error(`${s.label}: userinfo gave ${res.status}: ${JSON.stringify(json)}`);
  },
  load(s, seconds) {
    let next = 0;
    return cannon({
      url: s.url, duration: seconds,
      requests: [{ method: 'GET', path: '/me', setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${s.bearer[next++ % POOL]}` } }) }],
    });
  },
};

const signIn = {
  name: 'sign-in',
  describe: 'a whole sign-in in a new browser session: /auth, the login page, "Continue with GitHub", the GitHub stand-in (a process of its own), the callback, remembered consent, the code, POST /token; in (a) the interaction finishes at once with no page and no upstream',
  goals: { 'c/p': 1.0, 'c/a': 0.35, 'b/a': 0.4 },
  unit: 'sign-ins',
  async prepare(s) { await signedIn(s); }, // the consent is remembered from here on
  async check(s) { await redeem(s, await authorizeCode(s, new Browser(new URL(s.url).origin))); },
  async load(s, seconds) {
    const origin = new URL(s.url).origin;
    const latencies = [];
    let bad = 0;
    const started = performance.now();
    const end = started + seconds * 1000;
    await pooled(SIGN_IN_CONCURRENCY, SIGN_IN_CONCURRENCY, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await redeem(s, await authorizeCode(s, new Browser(origin)));
          latencies.push(performance.now() - t);
        } catch {
          bad += 1;
        }
      }
    });
    return {
      total: latencies.length, seconds: (performance.now() - started) / 1000, bad, badDetail: `${bad} failed sign-ins`,
      p50: Math.round(median(latencies)), p99: Math.round(latencies.sort((x, y) => x - y)[Math.floor(0.99 * (latencies.length - 1))] ?? 0),
    };
  },
};

export const FLOWS = [clientCredentials, introspection, refreshToken, authorizationCode, userinfo, signIn];
