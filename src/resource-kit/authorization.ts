import { invalidRequest, type Scheme } from './errors.js';

export interface Credential {
  scheme: Scheme;
  token: string;
}

/** RFC 7235 token (an auth-scheme) and token68 (the credential). */
const SCHEME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Reads `Authorization: Bearer <token>` or `Authorization: DPoP <token>`.
 * Returns undefined when there is no credential for this API (no header, or
 * another scheme such as Basic); throws invalid_request when the header is
 * malformed (garbage, a missing token, several tokens or schemes).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export function readAuthorization(header: string | undefined): Credential | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  if (!SCHEME.test(scheme)) throw invalidRequest('the Authorization header is malformed');
  const name = scheme.toLowerCase();
  if (name !== 'bearer' && name !== 'dpop') return undefined;
  const token = space === -1 ? '' : header.slice(space + 1).trim();
  if (!TOKEN68.test(token)) throw invalidRequest('the Authorization header must be "<scheme> <token>" with exactly one token');
  return { scheme: name === 'bearer' ? 'Bearer' : 'DPoP', token };
}
