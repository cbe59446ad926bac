import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { digestOf } from './digest.js';

/**
 * No usable credential at rest. An artifact's value (a token, a code, a session
 * or interaction id) is its key in oidc-provider's adapter. The row is stored
 * under a digest of that value instead (digest.ts), and the payload loses the
 * value (`jti`), which the lookup restores from the value it was asked for.
 *
 * Some payloads carry the value of *another* artifact (an interaction names its
 * session cookie, device code and pushed request). Those fields are sealed
 * (AES-256-GCM) under a key derived from the artifact's own value, so only a
 * lookup by that value can read them. A device code is also found by its user
 * code: its value is sealed under a key derived from the user code, and the
 * user code under one derived from the value, so either lookup restores both.
 * A user code is short enough to be guessed offline, so what is derived from
 * it (the lookup column, the seal of the value) also takes a secret of the
 * server's, the pepper (oidc/configuration.ts), which no dump holds.
 *
 * A grant keeps its id: grants are not bearer credentials (an id alone gets
 * nothing), and every artifact of a grant names it in the `grantId` column.
 */

/** Types whose row id is their own id, not a digest. */
const KEPT_IDS = new Set(['Grant']);

/** Payload fields that hold another artifact's value, by type (a path into the payload). */
const SEALED_FIELDS: Record<string, string[][]> = {
  // returnTo is the issuer's /auth/<uid> URL: it holds the interaction's own value
  Interaction: [['session', 'cookie'], ['deviceCode'], ['parJti'], ['returnTo']],
  DeviceCode: [['userCode']],
};

/** Types an admin names by the first characters of their value (registration tokens): kept as `idPrefix`. */
const NAMED_BY_PREFIX = new Set(['InitialAccessToken']);
export const ID_PREFIX_LENGTH = 8;

/** a device code's value, sealed under its user code */
const CODE_BY_USER_CODE = 'codeByUserCode';

export const keepsId = (type: string) => KEPT_IDS.has(type);

/** The key a row of `type` with the value `id` is stored under. */
export const storedKey = (type: string, id: string) => (KEPT_IDS.has(type) ? id : digestOf(id));

/**
 * The column value a device code's user code is found by. A user code is short
 * (20^8 values): a plain digest could be reversed by trying them all, so it is
 * keyed with a secret of the server's (`pepper`), which a dump does not hold.
 */
export const storedUserCode = (userCode: string, pepper: Buffer | undefined) =>
  (pepper ? createHmac('sha256', pepper).update(userCode).digest('base64url') : digestOf(userCode));

const key = (secret: string, label: string, salt: Buffer | string = '') => Buffer.from(hkdfSync('sha256', secret, salt, `gatehouse sealed ${label}`, 32));

function seal(secret: string, label: string, value: unknown, salt?: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key(secret, label, salt), iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return `${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${data.toString('base64url')}`;
}

/** The sealed value, or undefined when it cannot be opened with this secret (tampered, or another value). */
function open(secret: string, label: string, sealed: unknown, salt?: Buffer): unknown {
  if (typeof sealed !== 'string') return undefined;
  const [iv, tag, data] = sealed.split('.');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key(secret, label, salt), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag ?? '', 'base64url'));
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(data ?? '', 'base64url')), decipher.final()]).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Applies `fn` to the value at `path` (when there is one), copying the objects on the way. */
function mapAt(payload: Record<string, unknown>, path: string[], fn: (value: unknown) => unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (!(head in payload) || payload[head] === undefined) return payload;
  const inner = payload[head];
  if (!rest.length) return { ...payload, [head]: fn(inner) };
  if (!inner || typeof inner !== 'object') return payload;
  return { ...payload, [head]: mapAt(inner as Record<string, unknown>, rest, fn) };
}

const label = (type: string, path: string[]) => `${type} ${path.join('.')}`;

/** The payload as stored: without its value, other artifacts' values sealed. */
export function sealPayload(type: string, id: string, payload: Record<string, unknown>, pepper?: Buffer): Record<string, unknown> {
  if (KEPT_IDS.has(type)) return payload;
  // no `delete`: objects keep their fast shape on this hot path
  const { jti: _value, ...rest } = payload;
  let stored: Record<string, unknown> = rest;
  for (const path of SEALED_FIELDS[type] ?? []) stored = mapAt(stored, path, (v) => seal(id, label(type, path), v));
  if (type === 'DeviceCode' && typeof payload.userCode === 'string') stored = { ...stored, [CODE_BY_USER_CODE]: seal(payload.userCode, CODE_BY_USER_CODE, id, pepper) };
  if (NAMED_BY_PREFIX.has(type)) stored = { ...stored, idPrefix: id.slice(0, ID_PREFIX_LENGTH) };
  return stored;
}

/** Types whose stored payload carries more than the artifact's own fields. */
const hasExtras = (type: string) => type in SEALED_FIELDS || NAMED_BY_PREFIX.has(type);

/**
 * The payload as oidc-provider wrote it, from a row found by its value `id`,
 * or (`by.userCode`) a device code found by its user code. A row found by
 * anything else (a session by its uid) comes back without its value.
 */
export function openPayload(type: string, stored: Record<string, unknown>, by: { id: string } | { userCode: string } | { other: true }, pepper?: Buffer): Record<string, unknown> {
  if (KEPT_IDS.has(type)) return stored;
  // the common case (tokens, codes, sessions): the value back, nothing else to undo
  if (!hasExtras(type)) return 'id' in by ? { ...stored, jti: by.id } : stored;
  let id: string | undefined;
  if ('id' in by) id = by.id;
  else if ('userCode' in by) {
    const value = open(by.userCode, CODE_BY_USER_CODE, stored[CODE_BY_USER_CODE], pepper);
    id = typeof value === 'string' ? value : undefined;
  }
  const { [CODE_BY_USER_CODE]: _code, idPrefix: _prefix, ...own } = stored;
  if (id === undefined) return own;
  let payload: Record<string, unknown> = own;
  for (const path of SEALED_FIELDS[type] ?? []) payload = mapAt(payload, path, (v) => open(id, label(type, path), v));
  return { ...payload, jti: id };
}
