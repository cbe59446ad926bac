import { jsonRequest, startInProcess, type InProcess } from '../support/in-process.js';
import { migratedDatabase } from '../support/databases.js';
import { createClient } from '../../src/services/clients.js';
import { ensureAdminApi, findApi } from '../../src/services/apis.js';
import { SeedError, validateSeed } from '../../src/services/seed.js';
import { ServiceError } from '../../src/services/errors.js';

/**
 * One rule for client ids and one for API identifiers, whichever door a
 * client or API comes through (the management API here, the seed, the
 * services the CLI calls): a client id never starts with "-" (the CLI would
 * read `-rf` or `--help` as a flag), and an API identifier is an https URI
 * (http on a loopback host) or a URN, never javascript: and the like.
 */

const FLAG = 'must not start with "-" (a command line would read it as a flag)';
const SCHEME = 'must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>)';

describe('client ids and API identifiers through every door', () => {
  let server: InProcess;
  let token: string;

  beforeAll(async () => {
    server = await startInProcess();
    const { secret } = await createClient(server.database.prisma, {
      clientId: 'ops', name: 'Ops', resources: [`${server.url}/admin/v1`], scopes: ['admin:read', 'admin:write'],
    });
    await server.app.cache.refresh();
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin/v1`, scope: 'admin:read admin:write' }),
    });
    token = ((await res.json()) as { access_token: string }).access_token;
  });
  afterAll(() => server?.close());

  const admin = (method: string, path: string, body?: unknown) => jsonRequest(`${server.url}/admin/v1${path}`, { method, token, body });

  it('refuses a client id that starts with "-" on the management API, in the body or the path', async () => {
    for (const clientId of ['-rf', '--help']) {
      const created = await admin('POST', '/clients', { clientId, name: 'Flag' });
      expect({ clientId, status: created.status }).toEqual({ clientId, status: 400 });
      expect(created.body.errors).toEqual([{ path: ['clientId'], message: FLAG }]);
      const put = await admin('PUT', `/clients/${encodeURIComponent(clientId)}`, { name: 'Flag' });
      expect({ clientId, status: put.status }).toEqual({ clientId, status: 400 });
      expect(put.body.errors).toEqual([{ path: ['clientId'], message: FLAG }]);
    }
    expect(await server.database.prisma.client.count({ where: { clientId: { startsWith: '-' } } })).toBe(0);
    // a dash elsewhere is fine
    expect((await admin('POST', '/clients', { clientId: 'x--help', name: 'Dash' })).status).toBe(201);
  });

  it('refuses an API identifier with another scheme on the management API, with its path', async () => {
    for (const identifier of ['javascript:alert(1)', 'data:text/html,x', 'api://orders', 'file:///etc/passwd']) {
      const res = await admin('POST', '/apis', { identifier, scopes: ['read'] });
      expect({ identifier, status: res.status }).toEqual({ identifier, status: 400 });
      expect(res.body.errors).toEqual([{ path: ['identifier'], message: `${SCHEME}: ${identifier}` }]);
    }
    const plain = await admin('POST', '/apis', { identifier: 'http://orders.example.com' });
    expect(plain.body.errors).toEqual([{ path: ['identifier'], message: 'must use https (http only for localhost, 127.0.0.1 or [::1]): http://orders.example.com' }]);
    for (const identifier of ['https://orders.example.com', 'urn:example:orders', 'http://localhost:4000/api']) {
      expect({ identifier, status: (await admin('POST', '/apis', { identifier })).status }).toEqual({ identifier, status: 201 });
    }
  });

  it('refuses both in a seed file, each with its path, and in the services the CLI calls', async () => {
    let refused: unknown;
    try {
      validateSeed({ resources: [{ identifier: 'javascript:alert(1)' }], clients: [{ clientId: '--help', name: 'Flag' }] }, [], []);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(SeedError);
    expect((refused as SeedError).problems).toEqual(expect.arrayContaining([
      `resources[0].identifier: ${SCHEME}: javascript:alert(1)`,
      `clients[0].clientId: ${FLAG}`,
    ]));
    await expect(createClient(server.database.prisma, { clientId: '-rf', name: 'Flag' })).rejects.toBeInstanceOf(ServiceError);
  });
});

describe('the built-in management API', () => {
  it('is made for a development issuer on plain http that is not a loopback host (the issuer is checked by the configuration)', async () => {
    const { database, close } = await migratedDatabase('sqlite');
    try {
      await ensureAdminApi(database.prisma, 'http://gatehouse.internal:3000');
      expect((await findApi(database.prisma, 'http://gatehouse.internal:3000/admin/v1')).scopes).toEqual(['admin:read', 'admin:write']);
    } finally {
      await close();
    }
  });
});
