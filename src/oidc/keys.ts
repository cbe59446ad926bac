import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Db } from '../storage/database.js';

/**
 * Signing keys live in the database so that every instance signs with the same
 * keys and tokens survive restarts. On first start one ES256 key (access tokens)
 * and one RS256 key (ID tokens, and APIs that only speak RSA) are generated.
 */

export const SIGNING_ALGS = ['ES256', 'RS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

const STATE_ORDER = { current: 0, next: 1, previous: 2 } as Record<string, number>;

export async function generateJwk(alg: SigningAlg): Promise<JWK & { kid: string; alg: string }> {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg, use: 'sig' };
}

/** AES-256-GCM under the key-encryption key: "v1.<iv>.<tag>.<ciphertext>", base64url parts. */
export function encryptJwk(jwk: JWK, kek: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function decryptJwk(value: string, kek: Buffer): JWK {
  const [version, iv, tag, ciphertext] = value.split('.');
  if (version !== 'v1' || !iv || !tag || !ciphertext) throw new Error('unknown encrypted key format');
  const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return JSON.parse(Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8'));
}

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

function toRow(jwk: JWK & { kid: string; alg: string }, state: string, kek: Buffer | undefined) {
  return { kid: jwk.kid, alg: jwk.alg, state, privateJwk: kek ? encryptJwk(jwk, kek) : JSON.stringify(jwk), encrypted: Boolean(kek) };
}

/**
 * Returns the private JWKs to publish and sign with: current keys first
 * (oidc-provider signs with the first key of an algorithm), then next keys
 * (published ahead of rotation, so APIs know them before they sign anything),
 * then previous ones. Missing current or next keys are generated.
 */
export async function loadSigningKeys(db: Db, kek: Buffer | undefined): Promise<JWK[]> {
  let rows = await db.signingKey.findMany({ orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }] });
  const missing = (['current', 'next'] as const).flatMap((state) =>
    SIGNING_ALGS.filter((alg) => !rows.some((r) => r.alg === alg && r.state === state)).map((alg) => ({ alg, state })),
  );
  if (missing.length) {
    const created = await Promise.all(missing.map(async ({ alg, state }) => toRow(await generateJwk(alg), state, kek)));
    await db.signingKey.createMany({ data: created });
    rows = await db.signingKey.findMany({ orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }] });
  }
  return rows
    .filter((r) => r.state in STATE_ORDER)
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state])
    .map((r) => {
      if (!r.encrypted) return JSON.parse(r.privateJwk) as JWK;
      if (!kek) throw new KeyError(`signing key ${r.kid} is encrypted: set KEY_ENCRYPTION_KEY`);
      try {
        return decryptJwk(r.privateJwk, kek);
      } catch {
        throw new KeyError(`signing key ${r.kid} could not be decrypted: KEY_ENCRYPTION_KEY is wrong`);
      }
    });
}

/** How many retired keys per algorithm stay published, so tokens they signed still verify. */
const KEEP_PREVIOUS = 2;

export interface KeyInfo {
  kid: string;
  alg: string;
  state: string;
  encrypted: boolean;
  createdAt: Date;
}

export async function listSigningKeys(db: Db): Promise<KeyInfo[]> {
  return db.signingKey.findMany({
    select: { kid: true, alg: true, state: true, encrypted: true, createdAt: true },
    orderBy: [{ alg: 'asc' }, { createdAt: 'desc' }],
  });
}

/**
 * Rotates each algorithm one step: the next key (already published in /jwks)
 * becomes current, the current one becomes previous (still published, so the
 * tokens it signed verify until they expire), and a new next key is made. The
 * oldest previous keys beyond KEEP_PREVIOUS are deleted. Servers sign with the
 * new current keys after a restart; because every server already published
 * them as "next", a rolling restart never signs with a key an API cannot find.
 */
export async function rotateSigningKeys(db: Db, kek: Buffer | undefined): Promise<KeyInfo[]> {
  const fresh = await Promise.all(SIGNING_ALGS.map((alg) => generateJwk(alg)));
  await db.$transaction(async (tx) => {
    for (const alg of SIGNING_ALGS) {
      const next = await tx.signingKey.findFirst({ where: { alg, state: 'next' }, orderBy: { createdAt: 'asc' } });
      await tx.signingKey.updateMany({ where: { alg, state: 'current' }, data: { state: 'previous' } });
      if (next) await tx.signingKey.update({ where: { kid: next.kid }, data: { state: 'current' } });
    }
    // where there was no next key, the fresh one becomes current at once
    const rows = await tx.signingKey.findMany({ where: { state: 'current' }, select: { alg: true } });
    await tx.signingKey.createMany({
      data: fresh.map((jwk) => toRow(jwk, rows.some((r) => r.alg === jwk.alg) ? 'next' : 'current', kek)),
    });
    for (const alg of SIGNING_ALGS) {
      // most recently retired first (updatedAt moves when the state changes)
      const retired = await tx.signingKey.findMany({ where: { alg, state: 'previous' }, orderBy: [{ updatedAt: 'desc' }, { createdAt: 'desc' }], select: { kid: true } });
      const stale = retired.slice(KEEP_PREVIOUS).map((r) => r.kid);
      if (stale.length) await tx.signingKey.deleteMany({ where: { kid: { in: stale } } });
    }
  });
  return listSigningKeys(db);
}
