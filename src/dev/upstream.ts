import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { memoryAdapter } from './memory-adapter.js';

/**
 * The development upstream of `npm run dev`: a real OpenID Provider (oidc-provider) on a
 * loopback port whose login page lets whoever is at the keyboard be anyone: they type a
 * name and an email, and the ID token says so, with `email_verified: true`.
 *
 * Development only. Nothing the server loads imports this module (test/e2e/dev.test.ts
 * checks), and it refuses to start when NODE_ENV=production or on a non-loopback host.
 * Gatehouse reaches it only through the generic OIDC variables (OIDC_PROVIDERS=dev, …).
 */

export interface DevUpstreamOptions {
  /** e.g. http://localhost:3001; its port is where this listens */
  issuer: string;
  /** the one client: Gatehouse */
  clientId: string;
  clientSecret: string;
  /** Gatehouse's callback, $ISSUER/oauth2/dev/callback */
  redirectUris: string[];
  /** loopback address to listen on (default 127.0.0.1) */
  host?: string;
}

export interface DevUpstream {
  issuer: string;
  close(): Promise<void>;
}

type Person = { name: string; email: string };

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);
/** cookie names of its own: browsers share localhost cookies across ports, and Gatehouse is oidc-provider too */
const PREFIX = 'gatehouse_dev_upstream';
const LAST_PERSON_COOKIE = `${PREFIX}_last`;

/** The same email is the same person (the same `sub`) on every run, so Gatehouse finds the same account. */
export function subjectOf(email: string): string {
  return `dev-${createHash('sha256').update(email.trim().toLowerCase()).digest('base64url').slice(0, 22)}`;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Plain text of a sensible length, no control characters. */
function cleanText(value: string | undefined, max: number): string {
  return (value ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim().slice(0, max);
}

export async function startDevUpstream(options: DevUpstreamOptions): Promise<DevUpstream> {
  if (process.env.NODE_ENV === 'production') {
    throw new Error('the development upstream does not run when NODE_ENV=production');
  }
  const issuerUrl = new URL(options.issuer);
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(issuerUrl.hostname) || !LOOPBACK.has(host)) {
    throw new Error('the development upstream runs on a loopback address only (localhost, 127.0.0.1, ::1)');
  }
  const issuer = options.issuer.replace(/\/$/, '');
  const port = Number(issuerUrl.port || 80);

  /** who signed in with which `sub`; lost on restart, which only means typing the name again */
  const people = new Map<string, Person>();
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });

  const configuration: Configuration = {
    clients: [{
      client_id: options.clientId,
      client_secret: options.clientSecret,
      client_name: 'Gatehouse (development)',
      redirect_uris: options.redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    // the claims in the ID token too, as Google does
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'dev-upstream-rs256' }] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: { session: `${PREFIX}_session`, interaction: `${PREFIX}_interaction`, resume: `${PREFIX}_resume` },
    },
    features: { devInteractions: { enabled: false } },
    adapter: memoryAdapter(),
    ttl: { AccessToken: 3600, AuthorizationCode: 600, IdToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const person = people.get(sub);
      if (!person) return undefined;
      return {
        accountId: sub,
        claims: () => ({ sub, name: person.name, preferred_username: person.email.split('@')[0], email: person.email, email_verified: true }),
      };
    },
  };
  const provider = new Provider(issuer, configuration);
  // Every sign-in asks who you are: a new authorization request forgets the last session,
  // so "sign in as someone else" is just signing in again.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth') {
      const sessionId = ctx.cookies.get(`${PREFIX}_session`);
      const session = sessionId ? await provider.Session.find(sessionId) : undefined;
      if (session) await session.destroy();
    }
    await next();
  });
  const oidc = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return send(res, 400, 'text/plain', 'this sign-in is no longer current: start again from the app');
    if (details.prompt.name === 'login') {
      if (req.method === 'GET' && !action) return send(res, 200, 'text/html', loginPage(uid, lastPerson(req)));
      if (req.method === 'POST' && action === 'login') {
        const form = await readForm(req);
        const person = { name: cleanText(form.name, 100), email: cleanText(form.email, 200).toLowerCase() };
        const problem = !person.name ? 'Type a name.' : !/^[^\s@]+@[^\s@]+$/.test(person.email) ? 'Type an email address, like ada@example.com.' : undefined;
        if (problem) return send(res, 400, 'text/html', loginPage(uid, person, problem));
        const sub = subjectOf(person.email);
        people.set(sub, person);
        res.setHeader('set-cookie', `${LAST_PERSON_COOKIE}=${encodeURIComponent(JSON.stringify(person))}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000`);
        return provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
      }
    }
    if (details.prompt.name === 'consent') {
      // Gatehouse is this provider's only client: what it asks for is granted without a page.
      const { missingOIDCScope, missingOIDCClaims } = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      const grant = details.grantId
        ? (await provider.Grant.find(details.grantId))!
        : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    }
    send(res, 400, 'text/plain', 'unexpected step: start again from the app');
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(path);
    if (match) {
      interaction(req, res, match[1], match[2]).catch((err: Error) => {
        if (!res.headersSent) send(res, 400, 'text/html', messagePage(`This sign-in cannot go on (${err.message}). Start again from the app.`));
      });
    } else if (req.method === 'GET' && path === '/') {
      send(res, 200, 'text/html', messagePage(`This is the development sign-in provider of <code>npm run dev</code>. Its discovery document is at <a href="/.well-known/openid-configuration">/.well-known/openid-configuration</a>. Sign in through Gatehouse, not here.`));
    } else {
      oidc(req, res);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });

  return {
    issuer,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

function lastPerson(req: IncomingMessage): Person {
  const cookie = (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${LAST_PERSON_COOKIE}=`));
  try {
    const value = JSON.parse(decodeURIComponent(cookie?.slice(LAST_PERSON_COOKIE.length + 1) ?? '')) as Partial<Person>;
    return { name: cleanText(value.name, 100), email: cleanText(value.email, 200) };
  } catch {
    return { name: '', email: '' };
  }
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1d2433}
.dev{background:#fff4d6;border:1px solid #e0b44c;border-radius:6px;padding:.5rem .75rem;font-size:.9rem}
label{display:block;margin-top:1rem;font-weight:600}input{width:100%;box-sizing:border-box;font:inherit;padding:.4rem;margin-top:.25rem}
button{margin-top:1.25rem;font:inherit;padding:.5rem 1.25rem;background:#2f5bd3;color:#fff;border:0;border-radius:6px;cursor:pointer}
.problem{color:#b00020;font-weight:600}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

function loginPage(uid: string, person: Person, problem?: string): string {
  return page('Test person (development)', `<h1>Sign in as a test person</h1>
<p class="dev">Development only. This provider believes anything you type: pick any name and email. The email counts as verified.</p>
${problem ? `<p class="problem" role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="name">Name</label><input id="name" name="name" autocomplete="off" required value="${escapeHtml(person.name || 'Ada Lovelace')}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="off" required value="${escapeHtml(person.email || 'ada@example.com')}">
<button type="submit">Sign in</button>
</form>`);
}

function messagePage(html: string): string {
  return page('Test person (development)', `<h1>Test person (development)</h1><p>${html}</p>`);
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'cache-control': 'no-store',
    ...(type === 'text/html' && { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" }),
  }).end(body);
}

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 10_000) break;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

