// Setup (a): the ceiling. Plain oidc-provider with an in-memory adapter (plain Maps) and the same
// protocol work Gatehouse does for each flow of bench/flows.mjs:
// - a service client (client_credentials, introspection) with a plaintext secret, getting ES256 JWT
//   access tokens (RFC 9068) for the JWT API and opaque ones for the opaque API;
// - a web client (authorization_code with PKCE, refresh_token with rotation, userinfo), whose
//   sign-in is an interaction that finishes at once: no login page, no upstream, a new grant of
//   what was asked.
// With BENCH_POSTGRES_URL it is setup (p): the same, on a plain PostgreSQL adapter (bench/raw-pg-adapter.mjs).
// env: PORT, BENCH_CLIENTS (JSON: { service: {id, secret}, web: {id, secret} }), BENCH_REDIRECT_URI,
//      BENCH_JWT_API, BENCH_OPAQUE_API, BENCH_SCOPE, BENCH_POSTGRES_URL (optional)
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { calculateJwkThumbprint } from 'jose';
import Provider from 'oidc-provider';
import { plainPostgresAdapter } from './raw-pg-adapter.mjs';

const { PORT, BENCH_CLIENTS, BENCH_REDIRECT_URI, BENCH_JWT_API, BENCH_OPAQUE_API, BENCH_SCOPE, BENCH_POSTGRES_URL } = process.env;
const clients = JSON.parse(BENCH_CLIENTS);
const ACCOUNT = 'bench-account';

// Like Gatehouse (src/services/keys.ts): one P-256 key first (signs ES256 access tokens), one RSA 2048
// key (ID tokens, RS256 by default), each with its RFC 7638 thumbprint as kid: same headers and sizes.
const jwk = async (alg, pair) => {
  const key = pair.privateKey.export({ format: 'jwk' });
  return { ...key, kid: await calculateJwkThumbprint(key, 'sha256'), alg, use: 'sig' };
};
const keys = [
  await jwk('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
  await jwk('RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })),
];

/**
 * oidc-provider's own memory adapter keeps at most 1,000 artifacts (an LRU): a load's codes and
 * tokens would push each other out and fail as "not found", or introspect as inactive, which is
 * cheaper. The same in plain Maps, unbounded for the length of a run.
 */
const rows = new Map(); // `${model}:${id}` -> { payload, expiresAt (ms) }
const byUid = new Map();
const byUserCode = new Map();
const byGrant = new Map(); // grantId -> Set of keys
class MapAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    rows.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.uid) byUid.set(payload.uid, id);
    if (payload.userCode) byUserCode.set(payload.userCode, id);
    if (payload.grantId) byGrant.set(payload.grantId, (byGrant.get(payload.grantId) ?? new Set()).add(key));
  }
  async find(id) {
    const row = rows.get(this.key(id));
    return row && row.expiresAt > Date.now() ? row.payload : undefined;
  }
  async findByUid(uid) { return byUid.has(uid) ? this.find(byUid.get(uid)) : undefined; }
  async findByUserCode(userCode) { return byUserCode.has(userCode) ? this.find(byUserCode.get(userCode)) : undefined; }
  async consume(id) {
    const row = rows.get(this.key(id));
    if (row) row.payload = { ...row.payload, consumed: Math.floor(Date.now() / 1000) };
  }
  async destroy(id) { rows.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of byGrant.get(grantId) ?? []) rows.delete(key);
    byGrant.delete(grantId);
  }
}

const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  adapter: BENCH_POSTGRES_URL ? await plainPostgresAdapter(BENCH_POSTGRES_URL) : MapAdapter,
  jwks: { keys },
  clients: [{
    client_id: clients.service.id,
    client_secret: clients.service.secret, // plaintext: oidc-provider's own constant-time compare
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    client_id: clients.web.id,
    client_secret: clients.web.secret,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [BENCH_REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // a client introspects its own opaque tokens, as in Gatehouse
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const jwt = resource === BENCH_JWT_API;
        if (!jwt && resource !== BENCH_OPAQUE_API) throw new Provider.errors.InvalidTarget();
        return {
          scope: BENCH_SCOPE,
          audience: resource,
          accessTokenTTL: 600, // seconds, Gatehouse's default
          accessTokenFormat: jwt ? 'jwt' : 'opaque',
          ...(jwt ? { jwt: { sign: { alg: 'ES256' } } } : {}),
        };
      },
    },
  },
  // as in Gatehouse (src/oidc/configuration.ts)
  pkce: { required: () => true },
  responseTypes: ['code'],
  rotateRefreshToken: () => true,
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'picture'], email: ['email', 'email_verified'] },
  findAccount: (_ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, email: 'octocat@github.com', email_verified: true, name: 'The Octocat', preferred_username: 'octocat', picture: 'https://avatars.githubusercontent.com/u/583231?v=4' }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  enabledJWA: { idTokenSigningAlgValues: ['ES256', 'RS256'] },
});

/** The sign-in: the person is signed in and consents to everything asked, at once. */
async function interaction(req, res) {
  const { params } = await provider.interactionDetails(req, res);
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT }, consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => res.writeHead(500).end(String(err)));
  } else {
    callback(req, res);
  }
});
// as Gatehouse (src/server.ts): idle kept-alive connections stay open 65 s, so the bench's client
// never reuses one the server is closing (Node's default closes them after 5 s)
server.keepAliveTimeout = 65_000;
server.listen(Number(PORT), '127.0.0.1');
// Exit cleanly on SIGTERM so that --cpu-prof can write its profile.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
