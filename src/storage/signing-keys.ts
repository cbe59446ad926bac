import type { Db } from './database.js';

/** Signing keys as the `SigningKey` table holds them: private JWKs, encrypted or not, with their dates. */

type Keys = Pick<Db, 'signingKey'>;

export type KeyState = 'current' | 'next' | 'previous';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  state: string;
  /** the private JWK: JSON, or "v1.…" ciphertext when encrypted */
  privateJwk: string;
  encrypted: boolean;
  activatesAt: Date | null;
  retiredAt: Date | null;
  createdAt: Date;
}

export type SigningKeyInfo = Omit<SigningKeyRow, 'privateJwk'>;

const info = { kid: true, alg: true, state: true, encrypted: true, activatesAt: true, retiredAt: true, createdAt: true } as const;

/** Every key, oldest first. */
export function listKeyRows(db: Keys): Promise<SigningKeyRow[]> {
  return db.signingKey.findMany({ select: { ...info, privateJwk: true }, orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }] });
}

/** Every key without its private part, by algorithm, newest first. */
export function listKeyInfo(db: Keys): Promise<SigningKeyInfo[]> {
  return db.signingKey.findMany({ select: info, orderBy: [{ alg: 'asc' }, { createdAt: 'desc' }] });
}

export async function insertKeys(db: Keys, rows: Omit<SigningKeyRow, 'createdAt'>[]): Promise<void> {
  await db.signingKey.createMany({ data: rows });
}

export async function updateKey(db: Keys, kid: string, data: Partial<Pick<SigningKeyRow, 'state' | 'activatesAt' | 'retiredAt'>>): Promise<void> {
  await db.signingKey.updateMany({ where: { kid }, data });
}

export async function deleteKeys(db: Keys, kids: string[]): Promise<void> {
  if (kids.length) await db.signingKey.deleteMany({ where: { kid: { in: kids } } });
}
