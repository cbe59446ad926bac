import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { KeyError, listSigningKeys, ensureSigningKeys, rotateSigningKeys } from '../../src/services/keys.js';

describe.each(databaseKinds())('signing keys on %s', (kind) => {
  let database: Database;
  const kek = Buffer.alloc(32, 9);

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  const byState = async () => {
    const keys = await listSigningKeys(database.prisma);
    const out: Record<string, string[]> = {};
    for (const k of keys) (out[`${k.alg} ${k.state}`] ??= []).push(k.kid);
    return out;
  };

  it('makes a current and a next key per algorithm on first load, encrypted under the KEK, current first', async () => {
    const jwks = await ensureSigningKeys(database.prisma, kek);
    expect(jwks).toHaveLength(4);
    const s = await byState();
    expect(Object.keys(s).sort()).toEqual(['ES256 current', 'ES256 next', 'RS256 current', 'RS256 next']);
    // current keys come first, so oidc-provider signs with them
    expect(jwks.slice(0, 2).map((k) => k.kid).sort()).toEqual([s['ES256 current'][0], s['RS256 current'][0]].sort());
    const rows = await database.prisma.signingKey.findMany();
    for (const row of rows) {
      expect(row.encrypted).toBe(true);
      expect(row.privateJwk).not.toContain('"d"');
    }
    // loading again changes nothing
    await ensureSigningKeys(database.prisma, kek);
    expect(await byState()).toEqual(s);
  });

  it('refuses to load encrypted keys without the right KEK', async () => {
    await expect(ensureSigningKeys(database.prisma, undefined)).rejects.toThrow(KeyError);
    await expect(ensureSigningKeys(database.prisma, Buffer.alloc(32, 1))).rejects.toThrow(/KEY_ENCRYPTION_KEY is wrong/);
  });

  it('rotates next -> current -> previous, keeping the two most recently retired', async () => {
    const start = await byState();
    await rotateSigningKeys(database.prisma, kek);
    const one = await byState();
    expect(one['ES256 current']).toEqual(start['ES256 next']);
    expect(one['ES256 previous']).toEqual(start['ES256 current']);
    expect(one['ES256 next']).toHaveLength(1);
    expect(one['ES256 next']).not.toEqual(start['ES256 next']);

    await rotateSigningKeys(database.prisma, kek);
    await rotateSigningKeys(database.prisma, kek);
    const three = await byState();
    // retired in rotations 3 and 2: the former current keys of rounds 2 and 1
    expect(three['ES256 previous']).toHaveLength(2);
    expect(three['ES256 previous']).toEqual(expect.arrayContaining([one['ES256 current'][0]]));
    expect(three['ES256 previous']).not.toContain(start['ES256 current'][0]);
    expect(three['RS256 previous']).toHaveLength(2);
    expect(await ensureSigningKeys(database.prisma, kek)).toHaveLength(8);
  });
});
