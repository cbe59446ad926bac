import { request } from 'node:http';
import { startInProcess, type InProcess } from '../support/in-process.js';

/**
 * Every URL Gatehouse prints comes from ISSUER, whatever Host, X-Forwarded-Host
 * or X-Forwarded-Proto the request carries; a malformed Host gets a 400 on
 * every endpoint, never a 500.
 */

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with exactly these headers (fetch cannot set Host). */
function raw(server: InProcess, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Raw> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every absolute http(s) URL in a text. */
const urlsIn = (text: string) => [...text.matchAll(/https?:\/\/[^"'\s<>\\]+/g)].map((m) => m[0]);

const HOSTILE: [string, Record<string, string>][] = [
  ['another Host', { host: 'evil.example' }],
  ['another Host with a port', { host: 'evil.example:8443' }],
  ['X-Forwarded-Host and -Proto', { host: 'evil.example', 'x-forwarded-host': 'evil2.example', 'x-forwarded-proto': 'https' }],
];

describe.each([['without', 'false'], ['with', 'true']])('issuer URLs %s TRUST_PROXY', (_, trustProxy) => {
  let server: InProcess;
  let basic: string;
  let deviceClient: string;

  beforeAll(async () => {
    server = await startInProcess({ env: { TRUST_PROXY: trustProxy } });
    const client = await server.createClient({ grantTypes: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code'] });
    deviceClient = client.clientId;
    basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
  });
  afterAll(() => server?.close());

  /** The requests whose answers print URLs, with the headers under test added. */
  async function urlPrintingAnswers(extra: Record<string, string>) {
    const form = { 'content-type': 'application/x-www-form-urlencoded', ...extra };
    const token = await server.initialAccessToken();
    return {
      discovery: await raw(server, 'GET', '/.well-known/openid-configuration', extra),
      oauthMetadata: await raw(server, 'GET', '/.well-known/oauth-authorization-server', extra),
      registration: await raw(server, 'POST', '/reg', { ...extra, 'content-type': 'application/json', authorization: `Bearer ${token}` },
        JSON.stringify({ redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code'] })),
      device: await raw(server, 'POST', '/device/auth', { ...form, authorization: basic }, `client_id=${deviceClient}&scope=openid`),
      authorize: await raw(server, 'GET', `/auth?client_id=${deviceClient}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.com/cb')}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`, extra),
      logout: await raw(server, 'GET', '/session/end', extra),
    };
  }

  it('prints only issuer URLs for a well-behaved request (the control case)', async () => {
    const answers = await urlPrintingAnswers({ host: new URL(server.url).host });
    expect(answers.discovery.status).toBe(200);
    expect(JSON.parse(answers.discovery.body).token_endpoint).toBe(`${server.url}/token`);
    expect(answers.registration.status).toBe(201);
    expect(answers.device.status).toBe(200);
  });

  it.each(HOSTILE)('prints only issuer URLs for %s', async (_what, headers) => {
    const answers = await urlPrintingAnswers(headers);
    for (const [name, answer] of Object.entries(answers)) {
      expect({ name, status: answer.status < 500 }).toEqual({ name, status: true });
      const printed = [...urlsIn(answer.body), ...[answer.headers.location ?? []].flat()];
      for (const url of printed.filter((u) => /evil/.test(u) || u.startsWith('http'))) {
        // URLs of other parties (the app's redirect URI, spec links) are fine; none may name the hostile host
        expect({ name, url }).toEqual({ name, url: expect.not.stringMatching(/evil/) });
      }
    }
    const metadata = JSON.parse(answers.discovery.body) as Record<string, unknown>;
    expect(metadata.issuer).toBe(server.url);
    for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint', 'device_authorization_endpoint', 'end_session_endpoint']) {
      expect(String(metadata[key])).toMatch(new RegExp(`^${server.url}/`));
    }
    expect(JSON.parse(answers.registration.body).registration_client_uri).toMatch(new RegExp(`^${server.url}/reg/`));
    expect(JSON.parse(answers.device.body)).toMatchObject({ verification_uri: `${server.url}/device`, verification_uri_complete: expect.stringMatching(new RegExp(`^${server.url}/device\\?user_code=`)) });
    const location = String(answers.authorize.headers.location);
    expect(location.startsWith('/') || location.startsWith(server.url)).toBe(true);
  });

  it.each(['a b', '[x', 'x:99999', 'exa mple.com:80', '-bad-.example', 'x:'])('answers a malformed Host %j with 400 on every endpoint', async (host) => {
    for (const [method, path] of [['GET', '/.well-known/openid-configuration'], ['GET', '/jwks'], ['POST', '/token'], ['GET', '/auth'], ['GET', '/interaction/abc'], ['POST', '/reg'], ['GET', '/device'], ['GET', '/healthz']]) {
      const answer = await raw(server, method, path, { host });
      expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 400, body: expect.stringContaining('malformed Host header') });
    }
  });

  it('lets discovery and /jwks be cached for half the key publish lead, capped at an hour', async () => {
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      const answer = await raw(server, 'GET', path, { host: new URL(server.url).host });
      expect({ path, cacheControl: answer.headers['cache-control'] }).toEqual({ path, cacheControl: 'public, max-age=1800' });
    }
    // everything else stays uncacheable
    const token = await raw(server, 'POST', '/token', { host: new URL(server.url).host, 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=client_credentials');
    expect(token.headers['cache-control']).toBe('no-store');
  });
});
