import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import {
  KeyError, RETIRED_KEY_LIFETIME, describeSigningKeys, ensureSigningKeys, listSigningKeys, pruneRetiredKeys, readKeySet, rotateSigningKeys,
} from '../../src/services/keys.js';

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

  /** kids by stage at `now` */
  const stages = async (now: number) => {
    const keys = await describeSigningKeys(database.prisma, now);
    const out: Record<string, string[]> = {};
    for (const k of keys) (out[`${k.alg} ${k.stage}`] ??= []).push(k.kid);
    return out;
  };

  it('rotates live: the published next key signs once it has been published for the lead, then the old one retires', async () => {
    const start = await byState();
    const t0 = Date.now();
    const lead = 3600;
    await rotateSigningKeys(database.prisma, kek, { publishLeadSeconds: lead, now: t0 });
    // before the lead has passed, the old key still signs and the new one is only published
    const before = await stages(t0 + 1000);
    expect(before['ES256 signing']).toEqual(start['ES256 current']);
    expect(before['ES256 published']).toEqual(expect.arrayContaining(start['ES256 next']));
    expect(before['ES256 published']).toHaveLength(2); // the promoted key, and a new next key
    const set = await readKeySet(database.prisma, kek, t0 + 1000);
    expect(set.signing.sort()).toEqual([start['ES256 current'][0], start['RS256 current'][0]].sort());
    expect(set.nextChangeAt).toBeGreaterThan(t0);
    expect(set.nextChangeAt).toBeLessThanOrEqual(t0 + lead * 1000);
    // at the activation time the promoted key signs, first in the JWKS; the old one is retired but still published
    const after = await readKeySet(database.prisma, kek, set.nextChangeAt!);
    expect(after.signing.sort()).toEqual([start['ES256 next'][0], start['RS256 next'][0]].sort());
    expect(after.jwks.slice(0, 2).map((k) => k.kid).sort()).toEqual(after.signing.sort());
    expect(after.jwks.map((k) => k.kid)).toEqual(expect.arrayContaining(start['ES256 current']));
    expect((await stages(set.nextChangeAt!))['ES256 retired']).toEqual(start['ES256 current']);
  });

  it('keeps a retired key published until every token it signed has expired, then prunes it', async () => {
    const retired = (await describeSigningKeys(database.prisma)).filter((k) => k.stage === 'retired' || k.retiredAt);
    expect(retired.length).toBeGreaterThan(0);
    const leaves = Math.max(...retired.map((k) => k.retiredAt!.getTime())) + RETIRED_KEY_LIFETIME * 1000;
    expect(await pruneRetiredKeys(database.prisma, leaves - 1000)).toBe(0);
    expect(await pruneRetiredKeys(database.prisma, leaves + 1000)).toBe(retired.length);
    const kids = (await listSigningKeys(database.prisma)).map((k) => k.kid);
    for (const k of retired) expect(kids).not.toContain(k.kid);
  });

  it('refuses to rotate without the KEK that opens the stored keys, and writes nothing', async () => {
    const before = await byState();
    await expect(rotateSigningKeys(database.prisma, undefined, { publishLeadSeconds: 0 })).rejects.toThrow(KeyError);
    await expect(rotateSigningKeys(database.prisma, Buffer.alloc(32, 1), { publishLeadSeconds: 0 })).rejects.toThrow(/KEY_ENCRYPTION_KEY is wrong/);
    expect(await byState()).toEqual(before);
  });
});
