import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually, tokenRequest } from '../support/gatehouse.js';

/**
 * Live key rotation across instances and workers: a new key is published in
 * every JWKS before it signs, then signs everywhere, with no restart; tokens
 * of the retired key keep verifying. `keys rotate` needs the KEK of the keys.
 */
describe('live key rotation on two instances with two workers each', () => {
  const KEK = Buffer.alloc(32, 3).toString('base64url');
  const API = 'https://rotation.example.com';
  let db: TestDatabase;
  const servers: RunningServer[] = [];
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    for (let i = 0; i < 2; i += 1) servers.push(await startServer({ DATABASE_URL: db.url, WORKERS: '2', KEY_ENCRYPTION_KEY: KEK, KEY_PUBLISH_LEAD: '8' }));
    createApi(db.url, ['--identifier', API]);
    client = createClient(db.url, ['--name', 'rotation', '--resource', API]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await db?.drop();
  });

  const token = async (server: RunningServer) => {
    const r = await tokenRequest(server.url, { grant_type: 'client_credentials', resource: API }, [client.clientId, client.clientSecret]);
    expect(r.status).toBe(200);
    return r.body.access_token as string;
  };
  const kid = async (server: RunningServer) => decodeProtectedHeader(await token(server)).kid!;
  const published = async (server: RunningServer) => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  const rotate = (env: Record<string, string> = { KEY_ENCRYPTION_KEY: KEK, KEY_PUBLISH_LEAD: '8' }) => runCli(['keys', 'rotate', '--json'], db.url, { env });
  const verifyAt = (server: RunningServer, jwt: string) => jwtVerify(jwt, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { audience: API });

  it('refuses to rotate without the right KEY_ENCRYPTION_KEY, and changes nothing', async () => {
    const before = runCli(['keys', 'list', '--json'], db.url).json();
    for (const env of [{}, { KEY_ENCRYPTION_KEY: Buffer.alloc(32, 4).toString('base64url') }] as Record<string, string>[]) {
      const r = rotate(env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^gatehouse: signing key \S+ (is encrypted: set KEY_ENCRYPTION_KEY|could not be decrypted: KEY_ENCRYPTION_KEY is wrong)\n$/) });
    }
    expect(runCli(['keys', 'list', '--json'], db.url).json()).toEqual(before);
  });

  it('publishes the new key everywhere first, then signs with it everywhere, with no restart', async () => {
    await eventually(async () => (await Promise.all(servers.map(kid))).every(Boolean), 'tokens from both instances');
    const original = await kid(servers[0]);
    const oldToken = await token(servers[1]);
    // the first rotation promotes the key published at start; the second one's key was just made,
    // so it must wait out the publish lead
    expect(rotate().code).toBe(0);
    await eventually(async () => (await Promise.all([...servers, ...servers].map(kid))).every((k) => k !== original), 'the first rotation to sign everywhere');
    const first = await kid(servers[0]);
    const second = rotate();
    expect(second.code).toBe(0);
    // the key that signs next: published, with a time it starts signing
    const keys = second.json() as { kid: string; alg: string; stage: string; until: string | null }[];
    const next = keys.find((k) => k.alg === 'ES256' && k.stage === 'published' && k.until)!;
    expect(next).toBeDefined();
    // within the lead: in every JWKS, and nothing is signed with it yet
    await eventually(async () => (await Promise.all(servers.map(published))).every((kids) => kids.includes(next.kid)), 'the new key in both JWKS');
    // (on a loaded machine the lead may already be over by now: then only the later checks apply)
    if (Date.now() < Date.parse(next.until!) - 1_500) expect(await Promise.all([...servers, ...servers].map(kid))).toEqual([first, first, first, first]);
    // after the lead: every worker of every instance signs with it
    await eventually(async () => (await Promise.all([...servers, ...servers, ...servers].map(kid))).every((k) => k === next.kid), 'the new key to sign everywhere', 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(next.until!));
    // the retired keys are still published: a token signed before the rotations verifies at both instances
    for (const s of servers) await expect(verifyAt(s, oldToken)).resolves.toBeDefined();
    // no restart happened: both instances logged the change
    for (const s of servers) expect(s.output()).toContain('signing keys changed');
  });
});
