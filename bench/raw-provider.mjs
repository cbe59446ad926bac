// Setup (a): the ceiling. Plain oidc-provider with its default in-memory adapter,
// one client with a plaintext secret, ES256 JWT access tokens (RFC 9068) for the
// bench API: the same token kind, keys and algorithm Gatehouse issues.
// env: PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_RESOURCE, BENCH_SCOPE, BENCH_FORMAT (jwt | opaque)
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { calculateJwkThumbprint } from 'jose';
import Provider from 'oidc-provider';

const { PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_RESOURCE, BENCH_SCOPE, BENCH_FORMAT = 'jwt' } = process.env;

// Like Gatehouse (src/oidc/keys.ts): one P-256 key first (signs ES256 access tokens), one RSA 2048
// key, each with its RFC 7638 thumbprint as kid, so the tokens have the same header and size.
const jwk = async (alg, pair) => {
  const key = pair.privateKey.export({ format: 'jwk' });
  return { ...key, kid: await calculateJwkThumbprint(key, 'sha256'), alg, use: 'sig' };
};
const keys = [
  await jwk('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
  await jwk('RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })),
];

const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  jwks: { keys },
  clients: [{
    client_id: BENCH_CLIENT_ID,
    client_secret: BENCH_CLIENT_SECRET, // plaintext: oidc-provider's own constant-time compare
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // the introspection flow: a client introspects its own opaque tokens, as in Gatehouse
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: BENCH_SCOPE,
        audience: BENCH_RESOURCE,
        accessTokenTTL: 600, // seconds, Gatehouse's default
        accessTokenFormat: BENCH_FORMAT,
        ...(BENCH_FORMAT === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
      }),
    },
  },
  enabledJWA: { idTokenSigningAlgValues: ['ES256', 'RS256'] },
});

const server = createServer(provider.callback()).listen(Number(PORT), '127.0.0.1');
// Exit cleanly on SIGTERM so that --cpu-prof can write its profile.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
