import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createApi } from '../support/gatehouse.js';
import { startMcpApi, type McpApi } from '../support/apps.js';
import { LOOPBACK_HOSTS } from '../../src/common/loopback.js';

/**
 * What an MCP client does when it knows only the API's URL, over real HTTP
 * between real processes: Gatehouse (node dist/main.js, REGISTRATION=open) and
 * examples/mcp-api/server.mjs (the resource kit through gatehouse/resource).
 * 401 challenge → RFC 9728 protected-resource metadata → RFC 8414
 * authorization-server metadata → RFC 7591 registration → a token for the API
 * (RFC 8707 resource) → the API answers.
 */

const SCOPE = 'mcp:tools';

/** One auth-param of a challenge (RFC 7235 §2.1 quoted-string). */
function challengeParam(challenge: string, name: string): string | undefined {
  const match = new RegExp(`(?:^|[ ,])${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(challenge);
  return match?.[1].replace(/\\(.)/g, '$1');
}

/** RFC 8414 §2: endpoint URLs are absolute https (plain http only on loopback, as in these tests). */
function expectEndpoint(value: unknown, name: string) {
  expect({ name, type: typeof value }).toEqual({ name, type: 'string' });
  const url = new URL(value as string);
  expect({ name, ok: url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)), fragment: url.hash }).toEqual({ name, ok: true, fragment: '' });
}

const rpc = (method: string, id: number, params?: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

describe.each(databaseKinds())('MCP discovery from the API URL alone, on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;
  let api: McpApi;
  /** the only thing the client is given */
  let mcpUrl: string;

  /** what the client learns on its way, step by step */
  let resourceMetadataUrl: string;
  let resourceMetadata: Record<string, any>;
  let asMetadata: Record<string, any>;
  let registered: Record<string, any>;
  let accessToken: string;

  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    server = await startServer({ DATABASE_URL: db.url, REGISTRATION: 'open', REGISTRATION_RATE_LIMIT: '1000' });
    api = await startMcpApi(server.url);
    mcpUrl = api.resource;
    // the admin's one step: an API that apps which registered themselves may use
    createApi(db.url, ['--identifier', mcpUrl, '--name', 'MCP example', '--scope', SCOPE, '--allow-registered-clients']);
    // a second API without the flag, to show it stays closed to them
    createApi(db.url, ['--identifier', 'https://closed.example.com', '--scope', SCOPE]);
  });

  afterAll(async () => {
    await api?.close();
    await server?.stop();
    await db?.drop();
  });

  it('1. an unauthenticated call gets 401 with a Bearer challenge naming the resource metadata (RFC 9728 §5.1)', async () => {
    const res = await post(mcpUrl, rpc('tools/list', 1));
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).not.toContain('error=');
    expect(await res.json()).toEqual({ error_description: 'an access token is required' });
    resourceMetadataUrl = challengeParam(challenge, 'resource_metadata')!;
    // RFC 9728 §3.1: the well-known segment inserted between the host and the path /mcp
    expect(resourceMetadataUrl).toBe(`${api.origin}/.well-known/oauth-protected-resource/mcp`);
    expect(challenge).toBe(`Bearer realm="${mcpUrl}", resource_metadata="${resourceMetadataUrl}"`);
  });

  it('2. the protected-resource metadata (RFC 9728 §2, §3.2) names Gatehouse, field by field', async () => {
    const res = await fetch(resourceMetadataUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=600');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    resourceMetadata = (await res.json()) as Record<string, any>;
    // §3.3: `resource` is identical to the identifier the metadata URL was derived from
    expect(resourceMetadata.resource).toBe(mcpUrl);
    expect(resourceMetadata.authorization_servers).toEqual([server.url]);
    expect(resourceMetadata.bearer_methods_supported).toEqual(['header']);
    expect(resourceMetadata.scopes_supported).toEqual([SCOPE]);
    expect(resourceMetadata.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'RS256', 'PS256', 'EdDSA']));
    expect(resourceMetadata.dpop_signing_alg_values_supported.filter((a: string) => a.startsWith('HS') || a === 'none')).toEqual([]);
    expect(resourceMetadata.dpop_bound_access_tokens_required).toBe(false);
    expect(resourceMetadata.resource_name).toBe('Gatehouse MCP example');
    expect(Object.keys(resourceMetadata).sort()).toEqual([
      'authorization_servers', 'bearer_methods_supported', 'dpop_bound_access_tokens_required', 'dpop_signing_alg_values_supported',
      'resource', 'resource_name', 'scopes_supported',
    ]);
    // MCP clients without the challenge try the origin's well-known URL: the same document
    const atOrigin = await fetch(`${api.origin}/.well-known/oauth-protected-resource`);
    expect(atOrigin.status).toBe(200);
    expect(await atOrigin.json()).toEqual(resourceMetadata);
  });

  it('3. the authorization-server metadata (RFC 8414) is Gatehouse\'s discovery document, field by field', async () => {
    const issuer = resourceMetadata.authorization_servers[0] as string;
    expect(new URL(issuer).pathname).toBe('/'); // no path: RFC 8414 §3.1 puts the document at the root
    const res = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=1800');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    asMetadata = (await res.json()) as Record<string, any>;
    // §3.3: the issuer is exactly the one the metadata was asked for
    expect(asMetadata.issuer).toBe(issuer);
    for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'pushed_authorization_request_endpoint', 'device_authorization_endpoint']) {
      expectEndpoint(asMetadata[name], name);
      expect({ name, origin: new URL(asMetadata[name]).origin }).toEqual({ name, origin: issuer });
    }
    expect(asMetadata.registration_endpoint).toBe(`${issuer}/reg`);
    expect(asMetadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(asMetadata.response_types_supported).toEqual(['code']);
    expect(asMetadata.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(asMetadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'none']));
    expect(asMetadata.scopes_supported).toEqual(expect.arrayContaining(['openid']));
    expect(asMetadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(asMetadata.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
    // the one document under both names: nothing can disagree
    const openid = await fetch(`${issuer}/.well-known/openid-configuration`);
    expect(openid.headers.get('cache-control')).toBe(res.headers.get('cache-control'));
    expect(await openid.json()).toEqual(asMetadata);
    // and openid-client's RFC 8414 discovery accepts it (it checks the issuer too)
    const discovered = await oidc.discovery(new URL(issuer), 'nobody-yet', undefined, undefined, { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] });
    expect(discovered.serverMetadata().issuer).toBe(issuer);
  });

  it('4. the client registers itself at registration_endpoint, with no initial access token (RFC 7591)', async () => {
    const res = await post(asMetadata.registration_endpoint, JSON.stringify({
      client_name: 'An MCP agent',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }));
    registered = (await res.json()) as Record<string, any>;
    expect({ status: res.status, body: registered }).toEqual({
      status: 201,
      body: expect.objectContaining({
        client_id: expect.any(String),
        client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        registration_access_token: expect.any(String),
      }),
    });
  });

  it('5. it gets a token for the API (client_credentials, resource = the API URL, RFC 8707)', async () => {
    const rp = await oidc.discovery(
      new URL(resourceMetadata.authorization_servers[0]), registered.client_id, undefined, oidc.ClientSecretBasic(registered.client_secret),
      { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] },
    );
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: resourceMetadata.resource, scope: resourceMetadata.scopes_supported.join(' ') });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe(SCOPE);
    accessToken = tokens.access_token;
    expect(decodeJwt(accessToken)).toMatchObject({ iss: asMetadata.issuer, aud: mcpUrl, client_id: registered.client_id, sub: registered.client_id, scope: SCOPE });
    // an API that does not accept self-registered apps stays closed to it
    await expect(oidc.clientCredentialsGrant(rp, { resource: 'https://closed.example.com', scope: SCOPE })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('6. the API answers tools/list and tools/call with that token', async () => {
    const authorization = `Bearer ${accessToken}`;
    const list = await post(mcpUrl, rpc('tools/list', 2), { authorization });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({
      jsonrpc: '2.0',
      id: 2,
      result: { tools: [expect.objectContaining({ name: 'whoami', inputSchema: expect.objectContaining({ type: 'object' }) })] },
    });
    const whoami = await post(mcpUrl, rpc('tools/call', 3, { name: 'whoami', arguments: {} }), { authorization });
    expect(((await whoami.json()) as Record<string, any>).result.structuredContent).toEqual({ sub: registered.client_id, client_id: registered.client_id, scope: SCOPE });
    // a token for another audience is refused, and the challenge still leads to the metadata
    const other = await post(mcpUrl, rpc('tools/list', 4), { authorization: 'Bearer not-a-token' });
    expect(other.status).toBe(401);
    expect(challengeParam(other.headers.get('www-authenticate')!, 'error')).toBe('invalid_token');
    expect(challengeParam(other.headers.get('www-authenticate')!, 'resource_metadata')).toBe(resourceMetadataUrl);
    expect(api.output()).not.toMatch(/error/i);
  });
});

describe('authorization-server metadata for an ISSUER with a path', () => {
  let db: TestDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    const port = await freePort();
    server = await startServer({ DATABASE_URL: db.url, PORT: String(port), ISSUER: `http://localhost:${port}/tenant` });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('serves oidc-provider\'s one document at the RFC 8414 §3.1 and OpenID locations for the issuer, and the root names', async () => {
    const issuer = `${server.url}/tenant`;
    const read = async (path: string) => {
      const res = await fetch(`${server.url}${path}`);
      return { path, status: res.status, cacheControl: res.headers.get('cache-control'), body: res.status === 200 ? ((await res.json()) as Record<string, any>) : undefined };
    };
    const canonical = await read('/.well-known/oauth-authorization-server/tenant');
    expect(canonical).toMatchObject({ status: 200, cacheControl: 'public, max-age=1800', body: expect.objectContaining({ issuer }) });
    for (const path of ['/.well-known/openid-configuration/tenant', '/tenant/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      expect(await read(path)).toEqual({ ...canonical, path });
    }
    expect((await read('/.well-known/oauth-authorization-server/other')).status).toBe(404);
    // openid-client finds it both ways: RFC 8414 (path inserted) and OpenID (path appended)
    for (const algorithm of ['oauth2', 'oidc'] as const) {
      const config = await oidc.discovery(new URL(issuer), 'nobody', undefined, undefined, { algorithm, execute: [oidc.allowInsecureRequests] });
      expect(config.serverMetadata().issuer).toBe(issuer);
    }
  });
});
