import type { Context } from 'koa';

/**
 * Error answers of a protected resource, with the challenge the client needs.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 (Bearer challenges and error codes)
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1 (the DPoP challenge and invalid_dpop_proof)
 */

export type Scheme = 'Bearer' | 'DPoP';

export type ResourceErrorCode =
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'invalid_dpop_proof'
  | 'temporarily_unavailable';

/** Asymmetric algorithms accepted for DPoP proofs; advertised in the DPoP challenge's `algs`. */
export const DPOP_ALGS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'] as const;

/** How long a client should wait when the issuer's keys cannot be fetched (seconds). */
export const RETRY_AFTER_SECONDS = 10;

export class ResourceError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 503,
    readonly scheme: Scheme,
    readonly code: ResourceErrorCode | undefined,
    readonly description: string,
    readonly scope?: string,
  ) {
    super(description);
    this.name = 'ResourceError';
  }
}

/** No credential at all: a bare challenge, no error code (RFC 6750 §3.1). */
export const missingToken = () => new ResourceError(401, 'Bearer', undefined, 'an access token is required');

export const invalidRequest = (description: string) => new ResourceError(400, 'Bearer', 'invalid_request', description);

export const invalidToken = (description: string, scheme: Scheme) => new ResourceError(401, scheme, 'invalid_token', description);

/** @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1 */
export const invalidDpopProof = (description: string) => new ResourceError(401, 'DPoP', 'invalid_dpop_proof', description);

/** @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1 (insufficient_scope, 403) */
export const insufficientScope = (scopes: string[], scheme: Scheme) =>
  new ResourceError(403, scheme, 'insufficient_scope', 'the access token does not have the required scope', scopes.join(' '));

/** The issuer's keys could not be fetched: the token may be fine, so retry later rather than get a new one. */
export const keysUnavailable = () =>
  new ResourceError(503, 'Bearer', 'temporarily_unavailable', 'the access token cannot be checked right now: try again later');

/** RFC 7235 quoted-string; drops anything outside printable ASCII so a header can never be refused. */
function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The challenge for an error. `resourceMetadata` is the URL of the API's
 * protected-resource metadata, sent in every challenge so that a client that
 * knows only the API can find its authorization server.
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 */
export function challenge(err: ResourceError, realm: string, resourceMetadata?: string): string {
  const params: [string, string][] = [['realm', realm]];
  if (err.code) params.push(['error', err.code], ['error_description', err.description]);
  if (err.scope) params.push(['scope', err.scope]);
  if (resourceMetadata) params.push(['resource_metadata', resourceMetadata]);
  if (err.scheme === 'DPoP') params.push(['algs', DPOP_ALGS.join(' ')]);
  return `${err.scheme} ${params.map(([k, v]) => `${k}=${quote(v)}`).join(', ')}`;
}

/** Writes the error: status, challenge (or Retry-After for 503), and a JSON body mirroring it. */
export function respond(ctx: Context, err: ResourceError, realm: string, resourceMetadata?: string): void {
  ctx.status = err.status;
  ctx.set('Cache-Control', 'no-store');
  if (err.status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  else ctx.set('WWW-Authenticate', challenge(err, realm, resourceMetadata));
  ctx.body = err.code ? { error: err.code, error_description: err.description } : { error_description: err.description };
}
