import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseKinds, createTestDatabase, payloadAdapter, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { findClient } from '../../src/storage/clients.js';
import { listConsents, rememberConsent } from '../../src/services/consents.js';
import { signInWith } from '../../src/services/accounts.js';

/**
 * The rules about changing a client hold through every door that writes
 * clients: the CLI, a seed file and dynamic registration (RFC 7591/7592), all
 * real processes over a real database.
 * - A client cannot switch between public (none), secret and private-key authentication.
 * - A client that stops being first-party loses the consents it was given
 *   without asking (and their grants); nothing else does.
 */
describe.each(databaseKinds())('client rules through every door on %s', (kind) => {
  let testDb: TestDatabase;
  let database: Database;
  let server: RunningServer;
  let cwd: string;

  const cli = (...args: string[]) => runCli(args, testDb.url, { cwd });
  const seed = (name: string, content: object) => {
    const file = join(cwd, name);
    writeFileSync(file, JSON.stringify(content));
    return cli('seed', file, '--json');
  };
  const registrationToken = () => cli('registration-tokens', 'create', '--json').json().token as string;
  const register = async (body: Record<string, unknown>) => {
    const res = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registrationToken()}` },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, any>;
  };
  /** An RFC 7592 update of a registered client, with its registration access token. */
  const updateRegistration = async (created: Record<string, any>, body: Record<string, unknown>) => {
    const res = await fetch(created.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${created.registration_access_token}` },
      body: JSON.stringify({ client_id: created.client_id, ...body }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  /** Signs a person in (their account is created), gives the client a grant with a refresh token and remembers it as their consent. */
  const consent = async (clientId: string, person: string) => {
    const identity = { provider: 'github', subject: person, email: null, emailVerified: false, name: person, username: null, picture: null, raw: {} };
    const accountId = (await signInWith(database.prisma, identity, { linkVerifiedEmails: false })).account.id;
    accounts.set(person, accountId);
    const grantId = `grant-${clientId}-${accountId}`;
    await payloadAdapter(database, 'Grant').upsert(grantId, { accountId, clientId }, 3600);
    await payloadAdapter(database, 'RefreshToken').upsert(`rt-${grantId}`, { grantId }, 3600);
    await rememberConsent(database.prisma, accountId, clientId, grantId);
    return grantId;
  };
  const accounts = new Map<string, string>();
  /** The people (by name) whose consent to the client is remembered. */
  const consentsOf = async (clientId: string) =>
    (await listConsents(database.prisma, { clientId })).map((c) => [...accounts].find(([, id]) => id === c.accountId)?.[0]);
  const grantExists = async (grantId: string) => (await payloadAdapter(database, 'Grant').find(grantId)) !== undefined;

  const web = { grantTypes: ['authorization_code'], redirectUris: ['https://web.example.com/cb'] };
  const app = { client_name: 'Registered app', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code'] };

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-rules-'));
    server = await startServer({ DATABASE_URL: testDb.url, REGISTRATION_RATE_LIMIT: '1000' });
    database = await openDatabase({ url: testDb.url, kind });
  });
  afterAll(async () => {
    await database?.close();
    await server?.stop();
    await testDb?.drop();
    rmSync(cwd, { recursive: true, force: true });
  });

  describe('a client cannot switch between public and confidential', () => {
    it('through the CLI', async () => {
      expect(cli('clients', 'create', '--id', 'cli-public', '--name', 'P', '--auth-method', 'none', '--grant-type', 'authorization_code', '--redirect-uri', 'https://p.example.com/cb').code).toBe(0);
      const r = cli('clients', 'update', 'cli-public', '--auth-method', 'client_secret_post');
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/cannot switch between public \(none\), secret and private_key_jwt authentication/) });
      expect(await findClient(database.prisma, 'cli-public')).toMatchObject({ tokenEndpointAuthMethod: 'none', secretHash: null });
    });

    it('through a seed file, which then writes nothing at all', async () => {
      expect(seed('public.json', { clients: [{ clientId: 'seed-public', name: 'S', tokenEndpointAuthMethod: 'none', ...web }] }).code).toBe(0);
      const r = seed('switch.json', {
        clients: [
          { clientId: 'seed-innocent', name: 'New and valid' },
          { clientId: 'seed-public', name: 'S', tokenEndpointAuthMethod: 'client_secret_basic', ...web },
        ],
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('clients[1].tokenEndpointAuthMethod: a client cannot switch between public (none), secret and private_key_jwt authentication');
      expect(await findClient(database.prisma, 'seed-public')).toMatchObject({ tokenEndpointAuthMethod: 'none', secretHash: null });
      expect(await findClient(database.prisma, 'seed-innocent')).toBeNull();
    });

    it('through dynamic registration (RFC 7592), either way', async () => {
      const confidential = await register(app);
      const toPublic = await updateRegistration(confidential, { ...app, client_secret: confidential.client_secret, token_endpoint_auth_method: 'none' });
      expect(toPublic).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_client_metadata', error_description: expect.stringMatching(/cannot switch between public/) }) });
      expect(await findClient(database.prisma, confidential.client_id)).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_basic', secretHash: expect.stringMatching(/^\$argon2id\$/) });

      const pub = await register({ ...app, token_endpoint_auth_method: 'none' });
      const toConfidential = await updateRegistration(pub, { ...app, token_endpoint_auth_method: 'client_secret_basic' });
      expect(toConfidential).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_client_metadata' }) });
      expect(await findClient(database.prisma, pub.client_id)).toMatchObject({ tokenEndpointAuthMethod: 'none', secretHash: null });
    });
  });

  describe('a client that stops being first-party loses the consents given without asking', () => {
    it('through the CLI', async () => {
      expect(cli('clients', 'create', '--id', 'cli-fp', '--name', 'FP', '--first-party', ...['--grant-type', 'authorization_code', '--redirect-uri', 'https://fp.example.com/cb']).code).toBe(0);
      const grant = await consent('cli-fp', 'alice');
      // a change that keeps it first-party keeps the consent
      expect(cli('clients', 'update', 'cli-fp', '--name', 'Renamed', '--json').json()).not.toHaveProperty('withdrawnGrants');
      expect(await consentsOf('cli-fp')).toEqual(['alice']);

      expect(cli('clients', 'update', 'cli-fp', '--third-party', '--json').json()).toMatchObject({ firstParty: false, withdrawnGrants: 1 });
      expect(await consentsOf('cli-fp')).toEqual([]);
      expect(await grantExists(grant)).toBe(false);
    });

    it('through a seed file', async () => {
      const client = { clientId: 'seed-fp', name: 'FP', ...web, tokenEndpointAuthMethod: 'none' };
      expect(seed('fp.json', { clients: [{ ...client, firstParty: true }] }).code).toBe(0);
      const grant = await consent('seed-fp', 'bob');
      expect(seed('fp-again.json', { clients: [{ ...client, firstParty: true, name: 'FP renamed' }] }).json().clients).toEqual([{ clientId: 'seed-fp', action: 'updated' }]);
      expect(await consentsOf('seed-fp')).toEqual(['bob']);

      expect(seed('fp-demoted.json', { clients: [{ ...client, firstParty: false }] }).code).toBe(0);
      expect(await findClient(database.prisma, 'seed-fp')).toMatchObject({ firstParty: false });
      expect(await consentsOf('seed-fp')).toEqual([]);
      expect(await grantExists(grant)).toBe(false);
    });

    it('through dynamic registration: an app cannot change what an admin decided, so its consents stay', async () => {
      const created = await register(app);
      expect(cli('clients', 'update', created.client_id, '--first-party').code).toBe(0);
      const grant = await consent(created.client_id, 'carol');

      const put = await updateRegistration(created, { ...app, client_secret: created.client_secret, client_name: 'Renamed by the app' });
      expect(put.status).toBe(200);
      expect(await findClient(database.prisma, created.client_id)).toMatchObject({ name: 'Renamed by the app', firstParty: true });
      expect(await consentsOf(created.client_id)).toEqual(['carol']);
      expect(await grantExists(grant)).toBe(true);

      // the admin's door still applies the rule to the same client
      expect(cli('clients', 'update', created.client_id, '--third-party', '--json').json()).toMatchObject({ withdrawnGrants: 1 });
      expect(await consentsOf(created.client_id)).toEqual([]);
    });
  });
});
