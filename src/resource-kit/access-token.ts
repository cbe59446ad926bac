import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { invalidToken, keysUnavailable, type Scheme } from './errors.js';
import { KeysUnavailableError } from './key-set.js';

/** Asymmetric algorithms only: an HMAC "key" would be something the API can read. */
export const ACCESS_TOKEN_ALGS = ['ES256', 'RS256', 'PS256', 'EdDSA'];

/** The claims of an RFC 9068 JWT access token, as Gatehouse issues them. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  /** RFC 9449 §6: the thumbprint of the key a DPoP-bound token is bound to */
  cnf?: { jkt?: string };
}

export interface AccessTokenCheck {
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
  currentDate: Date;
}

/** Plain reasons for the client developer; never the token, a key or a library message. */
function describe(err: unknown): string {
  if (!(err instanceof errors.JOSEError)) return 'the access token is malformed';
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return 'the access token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = err as errors.JWTClaimValidationFailed;
      if (reason === 'missing') return 'the access token lacks a required claim';
      if (claim === 'aud') return 'the access token is not meant for this API';
      if (claim === 'iss') return 'the access token is from another issuer';
      if (claim === 'nbf') return 'the access token is not valid yet';
      if (claim === 'typ') return 'the token is not a JWT access token (typ at+jwt)';
      return 'the access token has an invalid claim';
    }
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'the access token is signed with an unknown key';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'the access token signature is invalid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'the access token is signed with an algorithm this API does not accept';
    default:
      return 'the access token is malformed';
  }
}

/**
 * Verifies a JWT access token: signature against the issuer's keys, `typ`
 * at+jwt, `iss`, `aud`, `exp` and `nbf` with a small leeway, and the claims
 * RFC 9068 requires. Throws a ResourceError (invalid_token, or 503 when the
 * keys cannot be fetched).
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export async function verifyAccessToken(token: string, keys: JWTVerifyGetKey, check: AccessTokenCheck, scheme: Scheme): Promise<AccessTokenClaims> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      typ: 'at+jwt',
      issuer: check.issuer,
      audience: check.audience,
      algorithms: ACCESS_TOKEN_ALGS,
      clockTolerance: check.clockToleranceSeconds,
      currentDate: check.currentDate,
      requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
    }));
  } catch (err) {
    if (err instanceof KeysUnavailableError) throw keysUnavailable();
    throw invalidToken(describe(err), scheme);
  }
  const { sub, client_id: clientId, scope, cnf, jti } = payload;
  const wellFormed =
    typeof sub === 'string' &&
    typeof clientId === 'string' &&
    typeof jti === 'string' &&
    (scope === undefined || typeof scope === 'string') &&
    (cnf === undefined || (typeof cnf === 'object' && cnf !== null && ((cnf as { jkt?: unknown }).jkt === undefined || typeof (cnf as { jkt?: unknown }).jkt === 'string')));
  if (!wellFormed) throw invalidToken('the access token has an invalid claim', scheme);
  return payload as AccessTokenClaims;
}
