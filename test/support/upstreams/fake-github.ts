import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for github.com (OAuth web application flow) and its REST API v3, speaking
 * the documented wire format over real HTTP, so Gatehouse reaches it through nothing
 * but its configured base/API URLs.
 */
export type FakeGitHubUser = {
  id: number;
  login: string;
  name: string | null;
  avatarUrl: string;
  publicEmail: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
};

/** deny: the user clicks "Cancel" on the consent screen. failApi: the REST API answers 500 (after authenticating). */
export type FakeGitHubBehaviour = { deny?: boolean; failApi?: boolean };

export type FakeGitHubRequest = { method: string; path: string; query: Record<string, string>; body?: Record<string, string> };

export type FakeGitHub = {
  baseUrl: string;
  apiUrl: string;
  setUser(user: FakeGitHubUser): void;
  setBehaviour(b: FakeGitHubBehaviour): void;
  log: FakeGitHubRequest[];
  close(): Promise<void>;
};

export const defaultGitHubUser: FakeGitHubUser = {
  id: 583231,
  login: 'octocat',
  name: 'The Octocat',
  avatarUrl: 'https://avatars.githubusercontent.com/u/583231?v=4',
  publicEmail: null,
  emails: [
    { email: 'octocat@github.com', primary: true, verified: true },
    { email: 'octocat@example.org', primary: false, verified: false },
  ],
};

const API_PREFIX = '/api/v3'; // GitHub Enterprise Server's layout: web and API on one host
const CODE_TTL_MS = 10 * 60_000;
const DOCS = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/';
const TOKEN_ERRORS = {
  bad_verification_code: ['The code passed is incorrect or expired.', `${DOCS}#bad-verification-code`],
  incorrect_client_credentials: ['The client_id and/or client_secret passed are incorrect.', `${DOCS}#incorrect-client-credentials`],
  redirect_uri_mismatch: ['The redirect_uri MUST match the registered callback URL for this application.', `${DOCS}#redirect-uri-mismatch`],
} as const;

type Code = { redirectUri: string; scope: string; challenge?: string; user: FakeGitHubUser; expiresAt: number };

/** `port`: where to listen on 127.0.0.1 (default: any free port). */
export async function startFakeGitHub(options: { clientId: string; clientSecret: string; port?: number }): Promise<FakeGitHub> {
  let user = defaultGitHubUser;
  let behaviour: FakeGitHubBehaviour = {};
  const log: FakeGitHubRequest[] = [];
  const codes = new Map<string, Code>();
  // Tokens keep the user they were issued for, as real ones do, so setUser() between flows is safe.
  const tokens = new Map<string, { scope: string; user: FakeGitHubUser }>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, 'text/plain', String(err)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', baseUrl);
    const query = Object.fromEntries(url.searchParams);
    const body = req.method === 'POST' ? await readForm(req) : undefined;
    log.push({ method: req.method ?? 'GET', path: url.pathname, query, ...(body && { body }) });

    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') return authorize(res, query);
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') return accessToken(req, res, { ...query, ...body });
    if (url.pathname.startsWith(`${API_PREFIX}/`)) return api(req, res, url.pathname.slice(API_PREFIX.length));
    send(res, 404, 'text/html', '<h1>404</h1><p>This is not the web page you are looking for.</p>');
  }

  function authorize(res: ServerResponse, q: Record<string, string>) {
    // GitHub shows its own 404 page (no redirect) for an unknown application.
    if (q.client_id !== options.clientId) return send(res, 404, 'text/html', '<h1>404</h1><p>Not Found</p>');
    // Real GitHub falls back to the registered callback URL; this fake has none to fall back to.
    if (!q.redirect_uri) return send(res, 400, 'text/html', '<p>redirect_uri is required by this fake</p>');
    if (q.code_challenge && (q.code_challenge_method ?? 'S256') !== 'S256') {
      return send(res, 400, 'text/html', '<p>code_challenge_method must be S256</p>');
    }
    const target = new URL(q.redirect_uri);
    if (behaviour.deny) {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'The user has denied your application access.');
      target.searchParams.set('error_uri', 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied');
    } else {
      const code = randomBytes(10).toString('hex'); // GitHub codes are 20 hex characters
      const scope = (q.scope ?? '').split(/[\s,]+/).filter(Boolean).join(',');
      codes.set(code, { redirectUri: q.redirect_uri, scope, challenge: q.code_challenge, user, expiresAt: Date.now() + CODE_TTL_MS });
      target.searchParams.set('code', code);
    }
    if (q.state !== undefined) target.searchParams.set('state', q.state);
    res.writeHead(302, { location: target.href }).end();
  }

  function accessToken(req: IncomingMessage, res: ServerResponse, p: Record<string, string>) {
    // GitHub answers token errors with HTTP 200, in whatever format the client asked for.
    const json = /application\/json/.test(req.headers.accept ?? '');
    const reply = (fields: Record<string, string>) =>
      json ? send(res, 200, 'application/json; charset=utf-8', JSON.stringify(fields))
        : send(res, 200, 'application/x-www-form-urlencoded; charset=utf-8', new URLSearchParams(fields).toString());
    const fail = (error: keyof typeof TOKEN_ERRORS) =>
      reply({ error, error_description: TOKEN_ERRORS[error][0], error_uri: TOKEN_ERRORS[error][1] });

    const [clientId, clientSecret] = basicAuth(req.headers.authorization) ?? [p.client_id, p.client_secret];
    if (clientId !== options.clientId || !safeEqual(clientSecret ?? '', options.clientSecret)) return fail('incorrect_client_credentials');

    const code = codes.get(p.code ?? '');
    codes.delete(p.code ?? ''); // single use, even when this attempt fails
    if (!code || code.expiresAt < Date.now()) return fail('bad_verification_code');
    if (p.redirect_uri !== undefined && p.redirect_uri !== code.redirectUri) return fail('redirect_uri_mismatch');
    // GitHub documents no PKCE-specific error; a wrong verifier makes the code "incorrect".
    if (code.challenge !== undefined && code.challenge !== s256(p.code_verifier ?? '')) return fail('bad_verification_code');

    const token = `gho_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'A').slice(0, 36)}`;
    tokens.set(token, { scope: code.scope, user: code.user });
    reply({ access_token: token, token_type: 'bearer', scope: code.scope });
  }

  function api(req: IncomingMessage, res: ServerResponse, path: string) {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), headers);
    if (!req.headers['user-agent']) {
      return send(res, 403, 'text/plain', 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).');
    }
    const docs = 'https://docs.github.com/rest';
    const header = req.headers.authorization;
    if (!header) return reply(401, { message: 'Requires authentication', documentation_url: docs, status: '401' });
    const grant = tokens.get(/^(?:bearer|token)\s+(\S+)$/i.exec(header)?.[1] ?? '');
    if (!grant) return reply(401, { message: 'Bad credentials', documentation_url: docs, status: '401' });
    if (behaviour.failApi) return reply(500, { message: 'Server Error' });

    const scopes = grant.scope.split(',').filter(Boolean);
    const headers = { 'x-oauth-scopes': scopes.join(', ') };
    const u = grant.user;
    if (req.method === 'GET' && path === '/user') return reply(200, userJson(u, baseUrl), headers);
    if (req.method === 'GET' && path === '/user/emails') {
      // Without user:email (or user) GitHub hides the resource rather than answering 403.
      if (!scopes.includes('user:email') && !scopes.includes('user')) return reply(404, { message: 'Not Found', documentation_url: docs, status: '404' }, headers);
      const emails = u.emails.map((e) => ({ ...e, visibility: e.email === u.publicEmail ? 'public' : e.primary ? 'private' : null }));
      return reply(200, emails, headers);
    }
    reply(404, { message: 'Not Found', documentation_url: docs, status: '404' });
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    apiUrl: `${baseUrl}${API_PREFIX}`,
    setUser: (u) => { user = u; },
    setBehaviour: (b) => { behaviour = { ...b }; },
    log,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

function userJson(u: FakeGitHubUser, baseUrl: string) {
  return {
    login: u.login, id: u.id, node_id: Buffer.from(`04:User${u.id}`).toString('base64'), avatar_url: u.avatarUrl,
    gravatar_id: '', url: `${baseUrl}${API_PREFIX}/users/${u.login}`, html_url: `${baseUrl}/${u.login}`, type: 'User',
    site_admin: false, name: u.name, company: null, blog: '', location: null, email: u.publicEmail, hireable: null,
    bio: null, twitter_username: null, public_repos: 0, public_gists: 0, followers: 0, following: 0,
    created_at: '2011-01-25T18:44:36Z', updated_at: '2024-01-01T00:00:00Z',
  };
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': type, ...headers }).end(body);
}

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  // GitHub also takes JSON bodies; some clients send them.
  if (/application\/json/.test(req.headers['content-type'] ?? '')) return text ? JSON.parse(text) : {};
  return Object.fromEntries(new URLSearchParams(text));
}

/** RFC 6749 §2.3.1: id and secret are form-encoded before base64. */
function basicAuth(header: string | undefined): [string, string] | undefined {
  const m = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return i < 0 ? undefined : [unform(decoded.slice(0, i)), unform(decoded.slice(i + 1))];
}

function s256(verifier: string) {
  return createHash('sha256').update(verifier).digest('base64url');
}

function safeEqual(a: string, b: string) {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
