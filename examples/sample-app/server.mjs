// A tiny web app that signs people in with Gatehouse: authorization code + PKCE with
// openid-client, then shows the ID token's claims and the tokens it got.
//
//   CLIENT_SECRET=... node examples/sample-app/server.mjs
//
// `npm run dev` starts it for you (and registers it in Gatehouse). Variables:
//   GATEHOUSE_ISSUER  Gatehouse's issuer             (default http://localhost:3000)
//   CLIENT_ID         this app's client id            (default sample-app)
//   CLIENT_SECRET     its secret                      (required)
//   PORT, HOST        where it listens                (default 3002 on 127.0.0.1)
//   APP_URL           its public URL                  (default http://localhost:$PORT)
// Registered redirect URI: $APP_URL/callback; post-logout redirect URI: $APP_URL/
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';

const issuer = (process.env.GATEHOUSE_ISSUER ?? 'http://localhost:3000').replace(/\/$/, '');
const clientId = process.env.CLIENT_ID ?? 'sample-app';
const clientSecret = process.env.CLIENT_SECRET;
const port = Number(process.env.PORT ?? 3002);
const host = process.env.HOST ?? '127.0.0.1';
const appUrl = (process.env.APP_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
const redirectUri = `${appUrl}/callback`;
// offline_access asks for a refresh token (oidc-provider grants it only with prompt=consent)
const scope = 'openid email profile offline_access';

if (!clientSecret) {
  process.stderr.write('sample app: set CLIENT_SECRET (and CLIENT_ID if not sample-app); `npm run dev` does it for you\n');
  process.exit(1);
}

/** Discovered on first use; a failure is retried on the next request. */
let discovered;
function configuration() {
  discovered ??= oidc
    .discovery(new URL(issuer), clientId, clientSecret, undefined, {
      // plain http is fine for Gatehouse on this machine only
      execute: /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(issuer) ? [oidc.allowInsecureRequests] : [],
    })
    .catch((err) => {
      discovered = undefined;
      throw err;
    });
  return discovered;
}

/** sessions in memory, by a random cookie: { pending?, signedIn? } */
const sessions = new Map();
const COOKIE = 'sample_app_session';

function session(req, res) {
  const id = (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
  if (id && sessions.has(id)) return sessions.get(id);
  const fresh = {};
  const newId = randomBytes(24).toString('base64url');
  sessions.set(newId, fresh);
  res.setHeader('set-cookie', `${COOKIE}=${newId}; Path=/; HttpOnly; SameSite=Lax`);
  return fresh;
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1d2433}
pre{background:#f4f6fa;padding:.75rem;border-radius:6px;overflow:auto}button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#2f5bd3}form{display:inline-block;margin-right:.5rem}dt{font-weight:600}dd{margin:0 0 .5rem}
.problem{color:#b00020;font-weight:600}`;

function page(res, status, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sample app</title><style>${STYLE}</style></head><body>${body}</body></html>`);
}

function home(res, s, problem) {
  const problemHtml = problem ? `<p class="problem" role="alert">${escapeHtml(problem)}</p>` : '';
  if (!s.signedIn) {
    return page(res, 200, `<h1>Sample app</h1>${problemHtml}
<p>This app signs you in with Gatehouse at <a href="${escapeHtml(issuer)}">${escapeHtml(issuer)}</a>,
with the authorization code flow and PKCE (openid-client).</p>
<form method="get" action="/login"><button type="submit">Sign in</button></form>`);
  }
  const { claims, tokens, userinfo, refreshed } = s.signedIn;
  // Gatehouse, like oidc-provider by default, puts the profile claims (name, email) in the
  // ID token only when no access token comes with it; here they come from UserInfo.
  const person = { ...userinfo, ...claims };
  const expiresIn = tokens.expiresAt ? Math.max(0, Math.round((tokens.expiresAt - Date.now()) / 1000)) : undefined;
  return page(res, 200, `<h1>Signed in as <span id="name">${escapeHtml(person.name ?? person.sub)}</span></h1>${problemHtml}
<p>Email: <span id="email">${escapeHtml(person.email ?? '(none)')}</span>${person.email_verified ? ' (verified)' : ''}</p>
<h2>Tokens</h2>
<dl>
<dt>Access token</dt><dd id="access-token">received (${escapeHtml(tokens.tokenType ?? 'bearer')}${expiresIn !== undefined ? `, expires in ${expiresIn} s` : ''}; scope: ${escapeHtml(tokens.scope ?? '')})</dd>
<dt>Refresh token</dt><dd id="refresh-token">${tokens.refreshToken ? `received${refreshed ? `, used ${refreshed} time(s) for new tokens` : ''}` : 'none'}</dd>
</dl>
<h2>ID token claims</h2>
<pre id="claims">${escapeHtml(JSON.stringify(claims, null, 2))}</pre>
<h2>UserInfo, fetched with the access token</h2>
<pre id="userinfo">${escapeHtml(JSON.stringify(userinfo, null, 2))}</pre>
<p><a href="${escapeHtml(issuer)}/account">Your account at Gatehouse</a> shows how you sign in and which apps have access.</p>
${tokens.refreshToken ? '<form method="post" action="/refresh"><button type="submit" class="secondary">Refresh tokens</button></form>' : ''}
<form method="post" action="/logout"><button type="submit" class="secondary">Sign out</button></form>`);
}

function keep(tokens, previous) {
  return {
    accessToken: tokens.access_token,
    tokenType: tokens.token_type,
    scope: tokens.scope ?? previous?.scope,
    expiresAt: tokens.expires_in ? Date.now() + tokens.expires_in * 1000 : undefined,
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    idToken: tokens.id_token ?? previous?.idToken,
  };
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', appUrl);
  const s = session(req, res);
  const redirect = (location) => res.writeHead(303, { location, 'cache-control': 'no-store' }).end();

  if (req.method === 'GET' && url.pathname === '/') return home(res, s);

  if (req.method === 'GET' && url.pathname === '/login') {
    const config = await configuration();
    const pending = { codeVerifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    s.pending = pending;
    const target = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      prompt: 'consent',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    });
    return redirect(target.href);
  }

  if (req.method === 'GET' && url.pathname === '/callback') {
    const pending = s.pending;
    delete s.pending;
    if (!pending) return home(res, s, 'That sign-in was not started here (or was already finished). Sign in again.');
    if (url.searchParams.has('error')) {
      return home(res, s, `Gatehouse said: ${url.searchParams.get('error')}${url.searchParams.get('error_description') ? ` (${url.searchParams.get('error_description')})` : ''}`);
    }
    const config = await configuration();
    const tokens = await oidc.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    s.signedIn = { claims: { ...claims }, userinfo: { ...userinfo }, tokens: keep(tokens), refreshed: 0 };
    return redirect('/');
  }

  if (req.method === 'POST' && url.pathname === '/refresh' && s.signedIn?.tokens.refreshToken) {
    const tokens = await oidc.refreshTokenGrant(await configuration(), s.signedIn.tokens.refreshToken);
    s.signedIn.tokens = keep(tokens, s.signedIn.tokens);
    s.signedIn.refreshed += 1;
    return redirect('/');
  }

  if (req.method === 'POST' && url.pathname === '/logout') {
    const idToken = s.signedIn?.tokens.idToken;
    delete s.signedIn;
    if (!idToken) return redirect('/');
    // sign out at Gatehouse too (it asks to confirm), then come back here
    return redirect(oidc.buildEndSessionUrl(await configuration(), { id_token_hint: idToken, post_logout_redirect_uri: `${appUrl}/` }).href);
  }

  page(res, 404, '<h1>Not found</h1><p><a href="/">Back to the sample app</a></p>');
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`sample app: ${err.message}\n`);
    if (res.headersSent) return res.end();
    const s = session(req, res);
    home(res, s, `Something went wrong: ${err.message}`);
  });
});
server.listen(port, host, () => {
  process.stdout.write(`sample app on ${appUrl} (Gatehouse at ${issuer}, client ${clientId})\n`);
});
const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
