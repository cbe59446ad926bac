import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Db } from '../storage/database.js';
import { transaction, type Tx } from '../storage/database.js';
import * as keys from '../storage/signing-keys.js';
import type { KeyState, SigningKeyInfo, SigningKeyRow } from '../storage/signing-keys.js';
import { ensureLeaseRow, serializeOn } from '../storage/leases.js';
import { SIGNING_ALGS, type SigningAlg } from '../common/protocol.js';
import { NODE_ID } from '../common/node-id.js';

/**
 * Signing keys live in the database so that every instance signs with the same
 * keys and tokens survive restarts. Each algorithm of SIGNING_ALGS has a
 * current key (signs), a next key (published ahead of rotation) and up to
 * KEEP_PREVIOUS retired keys (still published): four keys after first start.
 */

export type { SigningKeyInfo as KeyInfo } from '../storage/signing-keys.js';

/** How many retired keys per algorithm stay published, so tokens they signed still verify. */
const KEEP_PREVIOUS = 2;

const STATE_ORDER: Record<string, number> = { current: 0, next: 1, previous: 2 } satisfies Record<KeyState, number>;

export type PrivateJwk = JWK & { kid: string; alg: string };

export async function generateJwk(alg: SigningAlg): Promise<PrivateJwk> {
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

function toRow(jwk: PrivateJwk, state: KeyState, kek: Buffer | undefined): Omit<SigningKeyRow, 'createdAt'> {
  return { kid: jwk.kid, alg: jwk.alg, state, privateJwk: kek ? encryptJwk(jwk, kek) : JSON.stringify(jwk), encrypted: Boolean(kek) };
}

function privateJwk(row: SigningKeyRow, kek: Buffer | undefined): JWK {
  if (!row.encrypted) return JSON.parse(row.privateJwk) as JWK;
  if (!kek) throw new KeyError(`signing key ${row.kid} is encrypted: set KEY_ENCRYPTION_KEY`);
  try {
    return decryptJwk(row.privateJwk, kek);
  } catch {
    throw new KeyError(`signing key ${row.kid} could not be decrypted: KEY_ENCRYPTION_KEY is wrong`);
  }
}

/**
 * The private JWKs to publish and sign with, without creating any: current keys
 * first (oidc-provider signs with the first key of an algorithm), then next keys
 * (published ahead of rotation, so APIs know them before they sign anything),
 * then previous ones.
 */
export async function readSigningKeys(db: Db, kek: Buffer | undefined): Promise<JWK[]> {
  return (await keys.listKeyRows(db))
    .filter((r) => r.state in STATE_ORDER)
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state])
    .map((r) => privateJwk(r, kek));
}

/** Changes to the key set wait for each other: two nodes starting on an empty database make one set. */
const KEYS_LOCK = 'signing-keys';

const missingKeys = (rows: Pick<SigningKeyRow, 'alg' | 'state'>[]) =>
  (['current', 'next'] as const).flatMap((state) =>
    SIGNING_ALGS.filter((alg) => !rows.some((r) => r.alg === alg && r.state === state)).map((alg) => ({ alg, state })));

/** Runs a change of the key set in a transaction that no other node's key change overlaps. */
async function changeKeys(db: Db, change: (tx: Tx) => Promise<void>): Promise<void> {
  await ensureLeaseRow(db, KEYS_LOCK);
  await transaction(db, async (tx) => {
    await serializeOn(tx, KEYS_LOCK, NODE_ID);
    await change(tx);
  });
}

/**
 * readSigningKeys, after generating any missing current or next key. Nodes
 * that race here (several instances starting on an empty database) end with
 * one set: the first makes the keys, the others find them.
 */
export async function ensureSigningKeys(db: Db, kek: Buffer | undefined): Promise<JWK[]> {
  const missing = missingKeys(await keys.listKeyRows(db));
  if (missing.length) {
    // generated outside the transaction: RSA key generation is slow
    const fresh = new Map(await Promise.all(missing.map(async ({ alg, state }) => [`${alg}/${state}`, toRow(await generateJwk(alg), state, kek)] as const)));
    await changeKeys(db, async (tx) => {
      const still = missingKeys(await keys.listKeyRows(tx));
      if (still.length) await keys.insertKeys(tx, still.map(({ alg, state }) => fresh.get(`${alg}/${state}`)!));
    });
  }
  return readSigningKeys(db, kek);
}

export const listSigningKeys = (db: Db): Promise<SigningKeyInfo[]> => keys.listKeyInfo(db);

/**
 * Rotates each algorithm one step: the next key (already published in /jwks)
 * becomes current, the current one becomes previous (still published, so the
 * tokens it signed verify until they expire), and a new next key is made. The
 * oldest previous keys beyond KEEP_PREVIOUS are deleted. Servers sign with the
 * new current keys after a restart; because every server already published
 * them as "next", a rolling restart never signs with a key an API cannot find.
 */
export async function rotateSigningKeys(db: Db, kek: Buffer | undefined): Promise<SigningKeyInfo[]> {
  const fresh = await Promise.all(SIGNING_ALGS.map((alg) => generateJwk(alg)));
  await changeKeys(db, async (tx) => {
    for (const [i, alg] of SIGNING_ALGS.entries()) {
      const next = await keys.findKid(tx, alg, 'next');
      await keys.setKeyState(tx, { alg, state: 'current' }, 'previous');
      if (next) await keys.setKeyState(tx, { kid: next }, 'current');
      // where there was no next key, the fresh one becomes current at once
      await keys.insertKeys(tx, [toRow(fresh[i], next ? 'next' : 'current', kek)]);
      await keys.deleteKeys(tx, (await keys.retiredKids(tx, alg)).slice(KEEP_PREVIOUS));
    }
  });
  return listSigningKeys(db);
}
