import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Db } from '../storage/database.js';
import { transaction, type Tx } from '../storage/database.js';
import * as keys from '../storage/signing-keys.js';
import type { KeyState, SigningKeyInfo, SigningKeyRow } from '../storage/signing-keys.js';
import { bumpChangeStamp } from '../storage/change-stamp.js';
import { ensureLeaseRow, serializeOn } from '../storage/leases.js';
import { SIGNING_ALGS, type SigningAlg } from '../common/protocol.js';
import { NODE_ID } from '../common/node-id.js';
import { recordAudit } from './audit.js';

/**
 * Signing keys live in the database so that every instance signs with the same
 * keys and tokens survive restarts. Each algorithm of SIGNING_ALGS goes through
 * three stages, on every node without a restart:
 * 1. published: in /jwks, not signing (a `next` key, or a `current` one whose
 *    activatesAt has not come): at least KEY_PUBLISH_LEAD, so APIs that cache
 *    the JWKS know it before anything is signed with it;
 * 2. signing: the most recently activated key of its algorithm;
 * 3. retired: published until every token it signed has expired, then deleted.
 */

export type { SigningKeyInfo as KeyInfo } from '../storage/signing-keys.js';

/**
 * How long a retired key stays published, in seconds: the longest access-token
 * lifetime an API may have (1 day), plus an hour for ID tokens.
 */
export const RETIRED_KEY_LIFETIME = 25 * 60 * 60;

const SECOND = 1000;

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

function toRow(jwk: PrivateJwk, state: KeyState, kek: Buffer | undefined, activatesAt: Date | null): Omit<SigningKeyRow, 'createdAt'> {
  return { kid: jwk.kid, alg: jwk.alg, state, privateJwk: kek ? encryptJwk(jwk, kek) : JSON.stringify(jwk), encrypted: Boolean(kek), activatesAt, retiredAt: null };
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

/** When a key started (or starts) signing; keys from before stages signed from their creation. */
const activation = (row: SigningKeyInfo) => (row.state === 'next' ? null : (row.activatesAt ?? row.createdAt).getTime());

/** The key of each algorithm that signs at `now`: the most recently activated one. */
function signers(rows: SigningKeyInfo[], now: number): Set<string> {
  const best = new Map<string, SigningKeyInfo>();
  for (const row of rows) {
    const at = activation(row);
    if (at === null || at > now) continue;
    const held = best.get(row.alg);
    if (!held || at > activation(held)!) best.set(row.alg, row);
  }
  return new Set([...best.values()].map((r) => r.kid));
}

export type KeyStage = 'published' | 'signing' | 'retired';

/** A key's stage at `now`, and when it changes next (ms since the epoch). */
function keyStage(row: SigningKeyInfo, rows: SigningKeyInfo[], now: number): { stage: KeyStage; until: number | null } {
  if (signers(rows, now).has(row.kid)) {
    const successor = rows.filter((r) => r.alg === row.alg && (activation(r) ?? -1) > now).map((r) => activation(r)!).sort((a, b) => a - b)[0];
    return { stage: 'signing', until: successor ?? null };
  }
  const at = activation(row);
  if (at === null || at > now) return { stage: 'published', until: at };
  return { stage: 'retired', until: (row.retiredAt?.getTime() ?? at) + RETIRED_KEY_LIFETIME * SECOND };
}

export interface KeySet {
  /** private JWKs in signing order: each algorithm's signing key first (oidc-provider signs with the first key of an algorithm) */
  jwks: JWK[];
  /** the kids that sign now */
  signing: string[];
  /** each signing key's algorithm and since when it signs (ms since the epoch) */
  since: { alg: string; since: number }[];
  /** when the signing keys change next without a write (a scheduled activation), in ms since the epoch */
  nextChangeAt: number | null;
}

/** The key set at `now`, creating nothing. */
export async function readKeySet(db: Db, kek: Buffer | undefined, now = Date.now()): Promise<KeySet> {
  const rows = await keys.listKeyRows(db);
  const signing = signers(rows, now);
  const ordered = [...rows.filter((r) => signing.has(r.kid)), ...rows.filter((r) => !signing.has(r.kid))];
  const upcoming = rows.map(activation).filter((at): at is number => at !== null && at > now).sort((a, b) => a - b);
  const since = rows.filter((r) => signing.has(r.kid)).map((r) => ({ alg: r.alg, since: activation(r)! }));
  return { jwks: ordered.map((r) => privateJwk(r, kek)), signing: [...signing], since, nextChangeAt: upcoming[0] ?? null };
}

/** The private JWKs to publish and sign with, in signing order, creating nothing. */
export async function readSigningKeys(db: Db, kek: Buffer | undefined): Promise<JWK[]> {
  return (await readKeySet(db, kek)).jwks;
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
    const now = new Date();
    const fresh = new Map(await Promise.all(missing.map(async ({ alg, state }) => [`${alg}/${state}`, toRow(await generateJwk(alg), state, kek, state === 'current' ? now : null)] as const)));
    await changeKeys(db, async (tx) => {
      const still = missingKeys(await keys.listKeyRows(tx));
      if (still.length) await keys.insertKeys(tx, still.map(({ alg, state }) => fresh.get(`${alg}/${state}`)!));
    });
  }
  return readSigningKeys(db, kek);
}

export const listSigningKeys = (db: Db): Promise<SigningKeyInfo[]> => keys.listKeyInfo(db);

/** Every key with its stage and the dates that matter, for `keys list`. */
export async function describeSigningKeys(db: Db, now = Date.now()) {
  const rows = await keys.listKeyInfo(db);
  return rows.map((row) => {
    const { stage, until } = keyStage(row, rows, now);
    return {
      kid: row.kid, alg: row.alg, stage, encrypted: row.encrypted, publishedAt: row.createdAt,
      signsFrom: row.state === 'next' ? null : (row.activatesAt ?? row.createdAt),
      retiredAt: row.retiredAt,
      /** published: when it starts signing; signing: when its successor takes over; retired: when it leaves /jwks */
      until: until === null ? null : new Date(until),
    };
  });
}

export interface RotateOptions {
  /** seconds a new key is published before it signs */
  publishLeadSeconds: number;
  now?: number;
}

/**
 * Rotates each algorithm one step, live: the next key (published since the
 * last rotation) starts signing as soon as it has been published for the
 * lead, the signing key retires then, and a new next key is published now.
 * Retired keys whose tokens have all expired are deleted. Every node picks the
 * change up within CHANGE_POLL_MS and switches at the activation time, with no
 * restart. Refuses to run without the KEK that opens the stored keys.
 */
export async function rotateSigningKeys(db: Db, kek: Buffer | undefined, options: RotateOptions): Promise<SigningKeyInfo[]> {
  // throws KeyError when the stored keys are encrypted and `kek` is missing or wrong
  await readSigningKeys(db, kek);
  const now = options.now ?? Date.now();
  const fresh = await Promise.all(SIGNING_ALGS.map((alg) => generateJwk(alg)));
  await changeKeys(db, async (tx) => {
    const rows = await keys.listKeyRows(tx);
    for (const [i, alg] of SIGNING_ALGS.entries()) {
      const own = rows.filter((r) => r.alg === alg);
      const next = own.find((r) => r.state === 'next');
      const activatesAt = new Date(next ? Math.max(now, next.createdAt.getTime() + options.publishLeadSeconds * SECOND) : now);
      for (const current of own.filter((r) => r.state === 'current')) {
        await keys.updateKey(tx, current.kid, { state: 'previous', retiredAt: activatesAt });
      }
      if (next) await keys.updateKey(tx, next.kid, { state: 'current', activatesAt });
      // where there was no next key, the fresh one signs at once
      await keys.insertKeys(tx, [toRow(fresh[i], next ? 'next' : 'current', kek, next ? null : activatesAt)]);
    }
    await keys.deleteKeys(tx, expiredKids(rows, now));
    await bumpChangeStamp(tx);
    await recordAudit(tx, {
      action: 'signing_key.rotated',
      target: { type: 'signing_key', id: SIGNING_ALGS.join(',') },
      details: { publishLeadSeconds: options.publishLeadSeconds, newKids: fresh.map((k) => k.kid) },
    });
  });
  return listSigningKeys(db);
}

/** Retired keys whose every token has expired. */
function expiredKids(rows: SigningKeyInfo[], now: number): string[] {
  return rows.filter((r) => r.state === 'previous' && (r.retiredAt?.getTime() ?? r.createdAt.getTime()) + RETIRED_KEY_LIFETIME * SECOND < now).map((r) => r.kid);
}

/** Deletes retired keys whose tokens have all expired (a maintenance task). Returns how many. */
export async function pruneRetiredKeys(db: Db, now = Date.now()): Promise<number> {
  const stale = expiredKids(await keys.listKeyInfo(db), now);
  if (stale.length) {
    await changeKeys(db, async (tx) => {
      await keys.deleteKeys(tx, stale);
      await bumpChangeStamp(tx);
    });
  }
  return stale.length;
}

/** Whether scheduled rotation (KEY_ROTATION_DAYS) is due: a signing key older than `days`. */
export async function rotationDue(db: Db, days: number, now = Date.now()): Promise<boolean> {
  const rows = await keys.listKeyInfo(db);
  const signing = signers(rows, now);
  return rows.some((r) => signing.has(r.kid) && now - (r.activatesAt ?? r.createdAt).getTime() >= days * 86_400 * SECOND);
}
