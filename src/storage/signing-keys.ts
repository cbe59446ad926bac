import type { Db } from './database.js';
import type { SigningAlg } from '../common/protocol.js';

/** Signing keys as the `SigningKey` table holds them: private JWKs, encrypted or not. */

type Keys = Pick<Db, 'signingKey'>;

export type KeyState = 'current' | 'next' | 'previous';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  state: string;
  /** the private JWK: JSON, or "v1.…" ciphertext when encrypted */
  privateJwk: string;
  encrypted: boolean;
  createdAt: Date;
}

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  state: string;
  encrypted: boolean;
  createdAt: Date;
}

/** Every key, oldest first. */
export function listKeyRows(db: Keys): Promise<SigningKeyRow[]> {
  return db.signingKey.findMany({
    select: { kid: true, alg: true, state: true, privateJwk: true, encrypted: true, createdAt: true },
    orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }],
  });
}

/** Every key without its private part, by algorithm, newest first. */
export function listKeyInfo(db: Keys): Promise<SigningKeyInfo[]> {
  return db.signingKey.findMany({
    select: { kid: true, alg: true, state: true, encrypted: true, createdAt: true },
    orderBy: [{ alg: 'asc' }, { createdAt: 'desc' }],
  });
}

export async function insertKeys(db: Keys, rows: Omit<SigningKeyRow, 'createdAt'>[]): Promise<void> {
  await db.signingKey.createMany({ data: rows });
}

/** The oldest key of an algorithm in a state, or null. */
export async function findKid(db: Keys, alg: SigningAlg, state: KeyState): Promise<string | null> {
  const row = await db.signingKey.findFirst({ where: { alg, state }, orderBy: { createdAt: 'asc' }, select: { kid: true } });
  return row?.kid ?? null;
}

export async function setKeyState(db: Keys, where: { kid: string } | { alg: SigningAlg; state: KeyState }, state: KeyState): Promise<void> {
  await db.signingKey.updateMany({ where, data: { state } });
}

/** Retired keys of an algorithm, most recently retired first (updatedAt moves when the state changes). */
export async function retiredKids(db: Keys, alg: SigningAlg): Promise<string[]> {
  const rows = await db.signingKey.findMany({ where: { alg, state: 'previous' }, orderBy: [{ updatedAt: 'desc' }, { createdAt: 'desc' }], select: { kid: true } });
  return rows.map((r) => r.kid);
}

export async function deleteKeys(db: Keys, kids: string[]): Promise<void> {
  if (kids.length) await db.signingKey.deleteMany({ where: { kid: { in: kids } } });
}
