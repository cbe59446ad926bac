import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { DPOP_ALGS, ResourceError, invalidDpopProof, keysUnavailable } from './errors.js';
import type { ReplayStore } from './replay-cache.js';

/** How old a proof may be (seconds); RFC 9449 leaves the window to the server. */
export const PROOF_MAX_AGE_SECONDS = 60;

/** JWK members that only private (or symmetric) keys have. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface ProofCheck {
  /** the DPoP request header, if any */
  proof: string | undefined;
  /** the request method, e.g. GET */
  method: string;
  /** the request URL; its query and fragment are ignored */
  url: string;
  accessToken: string;
  /** the access token's `cnf.jkt` */
  jkt: string;
  currentDate: Date;
  clockToleranceSeconds: number;
  replay: ReplayStore;
}

/** RFC 9449 §4.3 item 9: compare URIs without query and fragment, after URL normalisation. */
function withoutQuery(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    parsed.search = '';
    parsed.hash = '';
    return parsed.href;
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) {
    if (err.reason === 'missing') return 'the DPoP proof lacks a required claim (jti, htm, htu, iat, ath)';
    if (err.claim === 'typ') return 'the DPoP proof must have typ dpop+jwt';
    if (err.claim === 'iat') return 'the DPoP proof is too old or not yet valid';
    if (err.claim === 'exp') return 'the DPoP proof has expired';
    return 'the DPoP proof has an invalid claim';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the DPoP proof must be signed with an asymmetric algorithm';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the DPoP proof signature is invalid';
  return 'the DPoP proof is malformed';
}

/**
 * Checks the DPoP proof sent with a DPoP-bound access token: one well-formed
 * `dpop+jwt` signed with an asymmetric algorithm by the public key in its
 * header, for this method and URL, recent, never seen before, for this access
 * token (`ath`), and by the key the token is bound to (`cnf.jkt`).
 * Throws invalid_dpop_proof.
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3 (checking DPoP proofs)
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1 (proofs with access tokens)
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1 (replay)
 */
export async function verifyDpopProof(check: ProofCheck): Promise<void> {
  try {
    await verify(check);
  } catch (err) {
    if (err instanceof ResourceError) throw err;
    throw invalidDpopProof(describe(err));
  }
}

async function verify(check: ProofCheck): Promise<void> {
  const { proof } = check;
  if (!proof) throw invalidDpopProof('a DPoP proof is required with this access token');
  // Several DPoP headers arrive joined with commas, which a compact JWS never has.
  if (proof.includes(',')) throw invalidDpopProof('send exactly one DPoP proof');
  const header = decodeProtectedHeader(proof);
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalidDpopProof('the DPoP proof must carry its public key (jwk)');
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw invalidDpopProof('the DPoP proof key must be a public key');

  const { payload } = await jwtVerify(proof, EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: [...DPOP_ALGS],
    currentDate: check.currentDate,
    clockTolerance: check.clockToleranceSeconds,
    maxTokenAge: PROOF_MAX_AGE_SECONDS,
    requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
  });
  const { jti, htm, htu, ath, iat } = payload as JWTPayload & Record<string, unknown>;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw invalidDpopProof('the DPoP proof jti is invalid');
  if (htm !== check.method) throw invalidDpopProof('the DPoP proof htm does not match the request method');
  const expected = withoutQuery(check.url);
  if (typeof htu !== 'string' || expected === undefined || withoutQuery(htu) !== expected) {
    throw invalidDpopProof('the DPoP proof htu does not match the request URL');
  }
  if (ath !== createHash('sha256').update(check.accessToken).digest('base64url')) {
    throw invalidDpopProof('the DPoP proof ath does not match the access token');
  }
  if ((await calculateJwkThumbprint(jwk as JWK, 'sha256')) !== check.jkt) {
    throw invalidDpopProof('the DPoP proof is not signed by the key the access token is bound to');
  }
  // Only a proof that passed every check uses up its jti, so forged proofs cannot burn them.
  const expiresAt = ((iat as number) + PROOF_MAX_AGE_SECONDS + 2 * check.clockToleranceSeconds) * 1000;
  let fresh: boolean;
  try {
    fresh = await check.replay.use(`${check.jkt} ${jti}`, expiresAt, check.currentDate.getTime());
  } catch {
    // a shared store that is away: the proof may be fine, so retry later
    throw keysUnavailable();
  }
  if (!fresh) {
    throw invalidDpopProof('the DPoP proof has already been used');
  }
}
