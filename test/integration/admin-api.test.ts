import { SignJWT, importJWK, type JWK } from 'jose';
import pg from 'pg';
import Sqlite from 'better-sqlite3';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi } from '../support/gatehouse.js';
import { contract, type Answer } from '../support/openapi-contract.js';
import { openDatabase } from '../../src/storage/database.js';
import { findClient } from '../../src/storage/clients.js';
import { CREDENTIAL_CLAIM, credentialVersion } from '../../src/services/admin-access.js';

/**
 * The management API over HTTP, on both databases, with tokens from real
 * management clients (client_credentials): every endpoint's success, its
 * validation errors, missing and wrong scope, a token for another audience, an
 * expired token, If-Match conflicts and paging. Every response is validated
 * against the OpenAPI document the server serves.
 */

const ORDERS = 'https://orders.example.com';

/** The private signing key (unencrypted in tests), to mint a token the server would have signed, but expired. */
async function signingKey(db: TestDatabase): Promise<JWK> {
  if (db.kind === 'sqlite') {
    const file = new Sqlite(db.url.replace(/^file:/, ''), { readonly: true });
    try {
      return JSON.parse((file.prepare("SELECT privateJwk FROM SigningKey WHERE alg = 'ES256' AND state = 'current'").get() as { privateJwk: string }).privateJwk);
    } finally {
      file.close();
    }
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return JSON.parse((await client.query('SELECT "privateJwk" FROM "SigningKey" WHERE alg = $1 AND state = $2', ['ES256', 'current'])).rows[0].privateJwk);
  } finally {
    await client.end();
  }
}

describe.each(databaseKinds())('the management API on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;
  let admin: string;
  let reader: string;
  let document: any;
  let check: ReturnType<typeof contract>;

  const token = async (clientId: string, secret: string, resource: string, scope: string) => {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
    });
    const body = (await res.json()) as { access_token: string };
    expect(res.status).toBe(200);
    return body.access_token;
  };

  async function call(method: string, path: string, options: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    const bearer = options.token === undefined ? admin : options.token;
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (options.body !== undefined || options.raw !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${server.url}/admin/v1${path}`, { method, headers, body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)) });
    const text = await res.text();
    const answer = { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : '' };
    check.validate(method, path, answer);
    return answer;
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    // only `migrate` (or the server's start) creates the database the CLI works on
    expect(runCli(['migrate'], db.url).code).toBe(0);
    createApi(db.url, ['--identifier', ORDERS, '--scope', 'orders:read']);
    server = await startServer({ DATABASE_URL: db.url });
    const adminApi = `${server.url}/admin/v1`;
    const ops = runCli(['clients', 'create', '--json', '--id', 'ops', '--name', 'Ops', '--resource', adminApi, '--scope', 'admin:read', '--scope', 'admin:write'], db.url).json();
    const audit = runCli(['clients', 'create', '--json', '--id', 'auditor', '--name', 'Auditor', '--resource', adminApi, '--scope', 'admin:read', '--resource', ORDERS], db.url).json();
    // the change reaches the server within CHANGE_POLL_MS
    await new Promise((r) => setTimeout(r, 400));
    admin = await token('ops', ops.clientSecret, adminApi, 'admin:read admin:write');
    reader = await token('auditor', audit.clientSecret, adminApi, 'admin:read');
    (globalThis as any).ordersToken = await token('auditor', audit.clientSecret, ORDERS, 'orders:read');
    document = await (await fetch(`${adminApi}/openapi.json`)).json();
    check = contract(document);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('serves an OpenAPI 3.1 document that describes itself', async () => {
    expect(document).toMatchObject({ openapi: '3.1.0', servers: [{ url: `${server.url}/admin/v1` }] });
    expect((await call('GET', '/openapi.json', { token: null })).status).toBe(200);
  });

  it('refuses a missing token, a token for another API, a wrong scope and an expired token, as problems', async () => {
    const missing = await call('GET', '/clients', { token: null });
    expect(missing).toMatchObject({ status: 401, body: { status: 401, title: 'Unauthorized' } });
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    const foreign = await call('GET', '/clients', { token: (globalThis as any).ordersToken });
    expect(foreign).toMatchObject({ status: 401, body: { detail: expect.stringMatching(/not meant for this API/) } });
    const readOnly = await call('POST', '/clients', { token: reader, body: { name: 'Nope' } });
    expect(readOnly).toMatchObject({ status: 403, body: { status: 403 } });
    expect((await call('GET', '/clients', { token: reader })).status).toBe(200);

    const jwk = await signingKey(db);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ client_id: 'ops', scope: 'admin:read admin:write' })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(server.url).setAudience(`${server.url}/admin/v1`).setSubject('ops').setJti('expired-1')
      .setIssuedAt(now - 3600).setExpirationTime(now - 600)
      .sign(await importJWK(jwk, 'ES256'));
    expect(await call('GET', '/clients', { token: expired })).toMatchObject({ status: 401, body: { detail: expect.stringMatching(/expired/) } });
    // the same key, not expired, naming the client's credentials as the server does: accepted (so the refusal above is the expiry)
    const database = await openDatabase({ url: db.url, kind: db.kind });
    const credential = credentialVersion((await findClient(database.prisma, 'ops'))!);
    await database.close();
    const fresh = await new SignJWT({ client_id: 'ops', scope: 'admin:read', [CREDENTIAL_CLAIM]: credential })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(server.url).setAudience(`${server.url}/admin/v1`).setSubject('ops').setJti('fresh-1')
      .setIssuedAt(now).setExpirationTime(now + 60)
      .sign(await importJWK(jwk, 'ES256'));
    expect((await call('GET', '/clients', { token: fresh })).status).toBe(200);
  });

  it('creates, shows, changes with If-Match, rotates and deletes a client; the secret only once', async () => {
    const created = await call('POST', '/clients', { body: { clientId: 'billing', name: 'Billing', resources: [ORDERS] } });
    expect(created).toMatchObject({ status: 201, body: { clientId: 'billing', hasSecret: true, clientSecret: expect.any(String) } });
    const etag = created.headers.get('etag')!;
    const shown = await call('GET', '/clients/billing');
    expect(shown.body).not.toHaveProperty('clientSecret');
    expect(shown.headers.get('etag')).toBe(etag);

    // no If-Match: 428; a stale one: 412; nothing changed by either
    expect((await call('PUT', '/clients/billing', { body: { name: 'Billing 2' } })).status).toBe(428);
    const changed = await call('PUT', '/clients/billing', { body: { name: 'Billing 2' }, headers: { 'if-match': etag } });
    expect(changed).toMatchObject({ status: 200, body: { name: 'Billing 2' } });
    expect(changed.headers.get('etag')).not.toBe(etag);
    const stale = await call('PUT', '/clients/billing', { body: { name: 'Lost update' }, headers: { 'if-match': etag } });
    expect(stale).toMatchObject({ status: 412, body: { detail: expect.stringMatching(/changed since you read it/) } });
    expect((await call('GET', '/clients/billing')).body.name).toBe('Billing 2');

    // two operators with the same version: exactly one wins
    const current = changed.headers.get('etag')!;
    const raced = await Promise.all(['A', 'B'].map((n) => call('PUT', '/clients/billing', { body: { name: `Operator ${n}` }, headers: { 'if-match': current } })));
    expect(raced.map((r) => r.status).sort()).toEqual([200, 412]);

    const rotated = await call('POST', '/clients/billing/secret');
    expect(rotated.body).toEqual({ clientId: 'billing', clientSecret: expect.any(String) });
    expect(rotated.body.clientSecret).not.toBe(created.body.clientSecret);

    // PUT by id creates when absent, and again is a change (idempotent with its ETag)
    const put = await call('PUT', '/clients/by-put', { body: { name: 'By PUT', tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'], redirectUris: ['https://app.example.com/cb'] } });
    expect(put).toMatchObject({ status: 201, body: { clientId: 'by-put', hasSecret: false } });
    expect(put.body).not.toHaveProperty('clientSecret');
    const again = await call('PUT', '/clients/by-put', { body: { name: 'By PUT' }, headers: { 'if-match': put.headers.get('etag')! } });
    expect(again.status).toBe(200);

    expect((await call('DELETE', '/clients/billing')).status).toBe(428);
    const latest = (await call('GET', '/clients/billing')).headers.get('etag')!;
    expect((await call('DELETE', '/clients/billing', { headers: { 'if-match': latest } })).status).toBe(204);
    expect(await call('GET', '/clients/billing')).toMatchObject({ status: 404, body: { detail: 'no client with id billing' } });
  });

  it('refuses bad input with every problem and its path, and changes nothing', async () => {
    const before = (await call('GET', '/clients?limit=500')).body.items.length;
    const bad = await call('POST', '/clients', { body: { name: '', grantTypes: ['authorization_code'], redirectUris: ['http://app.example.com/cb#x'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: unknown[] }) => e.path.join('.'))).toEqual(expect.arrayContaining(['name', 'redirectUris.0']));
    expect((await call('POST', '/clients', { raw: '{"name": ' })).body.detail).toBe('the body is not valid JSON');
    expect((await call('POST', '/clients', { body: ['not', 'an', 'object'] })).status).toBe(400);
    expect((await call('POST', '/clients', { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(415);
    expect((await call('POST', '/clients', { body: { name: 'x'.repeat(200_000) } })).status).toBe(413);
    expect((await call('GET', '/clients?limit=0')).body.errors).toEqual([{ path: ['limit'], message: 'must be a whole number from 1 to 500' }]);
    expect((await call('GET', '/audit-events?action=nope&since=yesterday')).body.errors.map((e: { message: string }) => e.message)).toEqual(['not a date: yesterday (use ISO 8601, e.g. 2026-11-26T12:00:00Z)', 'unknown action nope']);
    expect((await call('POST', '/apis', { body: { identifier: 'not a uri' } })).status).toBe(400);
    expect((await call('POST', '/registration-tokens', { body: { expiresIn: 5, singleUse: 'yes' } })).body.errors).toHaveLength(2);
    expect((await call('GET', '/clients?limit=500')).body.items.length).toBe(before);
    const unknown = await fetch(`${server.url}/admin/v1/no-such-thing`, { headers: { authorization: `Bearer ${admin}` } });
    expect({ status: unknown.status, type: unknown.headers.get('content-type'), body: await unknown.json() }).toEqual({
      status: 404, type: expect.stringContaining('application/problem+json'), body: expect.objectContaining({ status: 404, detail: 'no such endpoint: GET /admin/v1/no-such-thing' }),
    });
  });

  it('says what the CLI says for the same invalid input', async () => {
    const input = { name: 'Mixed', tokenEndpointAuthMethod: 'none', grantTypes: ['client_credentials'], redirectUris: ['http://example.com/cb'] };
    const api = await call('POST', '/clients', { body: input });
    const cli = runCli(['clients', 'create', '--name', 'Mixed', '--auth-method', 'none', '--grant-type', 'client_credentials', '--redirect-uri', 'http://example.com/cb'], db.url);
    expect(cli.code).toBe(1);
    const messages = api.body.errors.map((e: { message: string }) => e.message);
    expect(messages.length).toBeGreaterThanOrEqual(2);
    for (const message of messages) expect(cli.stderr).toContain(message);
  });

  it('pages through clients by id', async () => {
    for (let i = 0; i < 5; i += 1) await call('POST', '/clients', { body: { clientId: `page-${i}`, name: `Page ${i}` } });
    const seen: string[] = [];
    let next: string | null = null;
    do {
      const page: Answer = await call('GET', `/clients?limit=2${next ? `&after=${next}` : ''}`);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((c: { clientId: string }) => c.clientId));
      next = page.body.next;
    } while (next);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'ops', 'auditor']));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await call('GET', '/clients?dynamic=true')).body.items).toEqual([]);
  });

  it('manages APIs, registration tokens, signing keys and consents, and reads the audit trail of its own changes', async () => {
    const api = await call('POST', '/apis', { body: { identifier: 'https://ledger.example.com', scopes: ['ledger:read'], tokenFormat: 'opaque' } });
    expect(api).toMatchObject({ status: 201, body: { identifier: 'https://ledger.example.com', name: 'https://ledger.example.com' } });
    expect((await call('POST', '/apis', { body: { identifier: 'https://ledger.example.com' } })).status).toBe(409);
    expect((await call('GET', `/apis/${encodeURIComponent('https://ledger.example.com')}`)).body.scopes).toEqual(['ledger:read']);
    // PUT merges: fields left out keep their values; an unknown identifier is created
    const ledger = `/apis/${encodeURIComponent('https://ledger.example.com')}`;
    const changed = await call('PUT', ledger, { body: { scopes: ['ledger:read', 'ledger:write'], accessTokenTtl: 1200 } });
    expect(changed).toMatchObject({ status: 200, body: { identifier: 'https://ledger.example.com', scopes: ['ledger:read', 'ledger:write'], accessTokenTtl: 1200, tokenFormat: 'opaque' } });
    expect((await call('PUT', ledger, { body: { accessTokenTtl: 5 } })).status).toBe(400);
    expect((await call('PUT', ledger, { body: { identifier: 'https://other.example.com' } })).status).toBe(400);
    // ops was given admin:write by name: the scope cannot go
    const dropped = await call('PUT', `/apis/${encodeURIComponent(`${server.url}/admin/v1`)}`, { body: { scopes: ['admin:read'] } });
    expect(dropped).toMatchObject({ status: 409, body: { detail: expect.stringMatching(/admin:write still used by client ops/) } });
    expect((await call('PUT', ledger, { body: { name: 'Ledger' }, token: reader })).status).toBe(403);
    const put = await call('PUT', `/apis/${encodeURIComponent('https://journal.example.com')}`, { body: { scopes: ['journal:read'] } });
    expect(put).toMatchObject({ status: 201, body: { identifier: 'https://journal.example.com', name: 'https://journal.example.com', scopes: ['journal:read'] } });
    expect((await call('DELETE', `/apis/${encodeURIComponent('https://journal.example.com')}`)).status).toBe(204);
    expect((await call('GET', '/apis')).body.items.map((a: { identifier: string }) => a.identifier)).toEqual(expect.arrayContaining([ORDERS, `${server.url}/admin/v1`]));
    expect((await call('DELETE', `/apis/${encodeURIComponent('https://ledger.example.com')}`)).status).toBe(204);
    expect((await call('DELETE', `/apis/${encodeURIComponent(ORDERS)}`)).status).toBe(409);

    const created = await call('POST', '/registration-tokens', { body: { expiresIn: 3600, singleUse: true } });
    expect(created).toMatchObject({ status: 201, body: { token: expect.any(String), singleUse: true } });
    const listed = await call('GET', '/registration-tokens');
    expect(listed.body.items).toEqual([expect.objectContaining({ prefix: created.body.prefix, used: false, policies: ['single-use'] })]);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);
    expect((await call('DELETE', `/registration-tokens/${encodeURIComponent(created.body.token.slice(0, 10))}`)).status).toBe(204);
    expect((await call('DELETE', '/registration-tokens/abc')).status).toBe(400);

    const keys = await call('GET', '/signing-keys');
    expect(keys.body.items.map((k: { stage: string }) => k.stage).sort()).toEqual(['published', 'published', 'signing', 'signing']);
    const rotated = await call('POST', '/signing-keys/rotate');
    expect(rotated.body.items.length).toBe(6);

    expect((await call('GET', '/consents')).body.items).toEqual([]);
    expect((await call('DELETE', '/consents')).status).toBe(400);

    const hook = await call('POST', '/webhooks', { body: { url: 'https://hooks.example.com/gatehouse', events: ['client.created'] } });
    expect(hook).toMatchObject({ status: 201, body: { id: expect.any(String), secret: expect.stringMatching(/^whsec_/) } });
    expect((await call('POST', '/webhooks', { body: { url: 'http://hooks.example.com', events: ['no.such'] } })).body.errors.length).toBe(2);
    expect((await call('GET', '/webhooks')).body.items).toEqual([expect.not.objectContaining({ secret: expect.anything() })]);
    expect((await call('GET', `/webhooks/${hook.body.id}`)).body).toMatchObject({ id: hook.body.id, deliveries: [] });
    // enabling a webhook that is not disabled changes nothing
    expect(await call('POST', `/webhooks/${hook.body.id}/enable`)).toMatchObject({ status: 200, body: { id: hook.body.id, disabled: false } });
    const newSecret = await call('POST', `/webhooks/${hook.body.id}/secret`);
    expect(newSecret.body.secret).not.toBe(hook.body.secret);
    expect((await call('DELETE', `/webhooks/${hook.body.id}`)).status).toBe(204);
    expect((await call('GET', `/webhooks/${hook.body.id}`)).status).toBe(404);
    // a delivery sent again: the webhook's own event, to an address the server refuses at once
    const again = (await call('POST', '/webhooks', { body: { url: 'https://127.0.0.1:9/gatehouse', events: ['webhook.secret_rotated'] } })).body;
    await call('POST', `/webhooks/${again.id}/secret`);
    const [queued] = (await call('GET', `/webhooks/${again.id}`)).body.deliveries;
    expect(queued).toMatchObject({ eventType: 'webhook.secret_rotated' });
    expect((await call('POST', `/webhooks/${again.id}/deliveries/msg_nothere/redeliver`)).status).toBe(404);
    expect((await call('POST', `/webhooks/${again.id}/deliveries/${queued.id}/redeliver`, { token: reader })).status).toBe(403);
    // the server's worker may be sending it at this moment (409): ask again
    let redelivered = await call('POST', `/webhooks/${again.id}/deliveries/${queued.id}/redeliver`);
    for (let i = 0; i < 50 && redelivered.status === 409; i++) {
      await new Promise((r) => setTimeout(r, 100));
      redelivered = await call('POST', `/webhooks/${again.id}/deliveries/${queued.id}/redeliver`);
    }
    expect(redelivered).toMatchObject({ status: 200, body: { id: queued.id, webhookId: again.id, deliveredAt: null, failedAt: null } });
    expect(redelivered.body.payload).toBeUndefined();
    expect((await call('DELETE', `/webhooks/${again.id}`)).status).toBe(204);

    const trail = await call('GET', '/audit-events?actor=ops&limit=1000');
    const actions = trail.body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['client.created', 'client.updated', 'client.secret_rotated', 'client.deleted', 'api.created', 'api.deleted', 'registration_token.created', 'registration_token.revoked', 'signing_key.rotated', 'webhook.created', 'webhook.secret_rotated', 'webhook.deleted', 'webhook.redelivered']));
    expect(trail.body.items.every((e: { actorType: string; actorId: string }) => e.actorType === 'admin-client' && e.actorId === 'ops')).toBe(true);
    expect(JSON.stringify(trail.body)).not.toContain(created.body.token);
    expect(JSON.stringify(trail.body)).not.toContain(hook.body.secret);
  });

  it('answered every documented operation it called with a documented status', () => {
    // a guard that the suite above went through the contract for each endpoint
    // the accounts endpoints need a person signed in: test/app/admin-accounts.test.ts calls them
    const operations = Object.entries(document.paths).filter(([path]) => !path.startsWith('/accounts'))
      .flatMap(([path, ops]) => Object.keys(ops as object).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`));
    const called = new Set([...check.checked].map((c) => c.split(' ').slice(0, 2).join(' ')));
    expect(operations.filter((op) => !called.has(op))).toEqual([]);
  });
});
