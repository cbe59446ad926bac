import type { Db } from '../storage/database.js';
import { consumePayload, deletePayloadByKey, listLivePayloads, payloadKeysStartingWith, unconsumePayload } from '../storage/oidc-payloads.js';
import { ID_PREFIX_LENGTH } from '../storage/payload-sealing.js';
import { SINGLE_USE_POLICY } from '../common/protocol.js';
import { assertThat, conflict, invalid, notFound, type Problem } from './errors.js';
import { recordAudit } from './audit.js';

/**
 * Initial access tokens, which let third-party developers register apps
 * (RFC 7591). oidc-provider makes and reads them (model InitialAccessToken);
 * these are the rules around them.
 */

const TYPE = 'InitialAccessToken';

/** Characters of a token that name it in lists and revocation: enough to tell tokens apart, useless to use one (kept by storage). */
const PREFIX_LENGTH = ID_PREFIX_LENGTH;
/** The shortest prefix `revoke` accepts. */
export const MIN_REVOKE_PREFIX = 6;

export interface RegistrationTokenInfo {
  prefix: string;
  expiresAt: Date | null;
  used: boolean;
  policies: string[];
}

export const tokenPrefix = (token: string) => token.slice(0, PREFIX_LENGTH);

export async function listRegistrationTokens(db: Db, now: Date): Promise<RegistrationTokenInfo[]> {
  return (await listLivePayloads(db, TYPE, now)).map((r) => ({
    // stored under a digest: the prefix was kept when it was made
    prefix: typeof r.payload.idPrefix === 'string' ? r.payload.idPrefix : '',
    expiresAt: r.expiresAt,
    used: r.consumedAt !== null,
    policies: Array.isArray(r.payload.policies) ? r.payload.policies.filter((p): p is string => typeof p === 'string') : [],
  }));
}

/** Revokes the one token whose value starts with `prefix` (literally); refuses a prefix that names none or several. */
export async function revokeRegistrationToken(db: Db, prefix: string): Promise<void> {
  assertThat(prefix.length >= MIN_REVOKE_PREFIX, invalid([{ path: ['prefix'], message: `the prefix must have at least ${MIN_REVOKE_PREFIX} characters` }]));
  const keys = await payloadKeysStartingWith(db, TYPE, prefix, new Date());
  assertThat(keys.length > 0, notFound(`no initial access token starts with ${prefix}`));
  assertThat(keys.length === 1, conflict(`${keys.length} tokens start with ${prefix}: give more characters`));
  await deletePayloadByKey(db, TYPE, keys[0].key);
  await recordAudit(db, { action: 'registration_token.revoked', target: { type: 'registration_token', id: keys[0].prefix } });
}

/** The trail of a new initial access token: its prefix (which names it, and is useless to use), never the token. */
export async function auditRegistrationTokenCreated(db: Db, token: string, details: { expiresAt: Date | null; singleUse: boolean }): Promise<void> {
  await recordAudit(db, { action: 'registration_token.created', target: { type: 'registration_token', id: tokenPrefix(token) }, details: { expiresAt: details.expiresAt?.toISOString() ?? null, singleUse: details.singleUse } });
}

export interface NewRegistrationToken {
  /** the token itself: shown once, never stored or logged in the clear */
  token: string;
  prefix: string;
  expiresAt: Date;
  singleUse: boolean;
}

/**
 * Makes an initial access token (the management API's and the console's
 * rules): only with REGISTRATION=initial-access-token; `expiresIn` seconds
 * (default a day, 60 to a year), `singleUse` a boolean. `mint` is
 * oidc-provider's InitialAccessToken, which stores it as the server reads it.
 * Audited by its prefix.
 */
export async function createRegistrationToken(
  db: Db,
  registrationMode: string,
  input: { expiresIn?: unknown; singleUse?: unknown },
  mint: (options: { expiresIn: number; policies?: string[] }) => Promise<string>,
): Promise<NewRegistrationToken> {
  if (registrationMode !== 'initial-access-token') {
    throw conflict(`REGISTRATION is ${registrationMode}: initial access tokens are only used with REGISTRATION=initial-access-token`);
  }
  const { expiresIn = 86_400, singleUse = false } = input;
  const problems: Problem[] = [];
  if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 60 || expiresIn > 31_536_000) problems.push({ path: ['expiresIn'], message: 'must be a whole number of seconds from 60 to 31536000' });
  if (typeof singleUse !== 'boolean') problems.push({ path: ['singleUse'], message: 'must be true or false' });
  if (problems.length) throw invalid(problems);
  const token = await mint({ expiresIn: expiresIn as number, ...(singleUse ? { policies: [SINGLE_USE_POLICY] } : {}) });
  const expiresAt = new Date(Date.now() + (expiresIn as number) * 1000);
  await auditRegistrationTokenCreated(db, token, { expiresAt, singleUse: singleUse as boolean });
  return { token, prefix: tokenPrefix(token), expiresAt, singleUse: singleUse as boolean };
}

/** The single-use rule: true for exactly one of any number of racing registrations. */
export function consumeSingleUseToken(db: Db, jti: string, now: Date): Promise<boolean> {
  return consumePayload(db, TYPE, jti, now);
}

/** A registration that failed gives its single-use token back, so a typo does not burn it. */
export function releaseSingleUseToken(db: Db, jti: string): Promise<void> {
  return unconsumePayload(db, TYPE, jti);
}

export const isSingleUse = (policies: readonly string[] | undefined) => policies?.includes(SINGLE_USE_POLICY) ?? false;
