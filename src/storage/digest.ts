import { createHash } from 'node:crypto';

/**
 * The key a bearer artifact is stored under: SHA-256 of its value, base64url
 * without padding. The values are random 256-bit strings (oidc-provider's
 * nanoid), so a plain digest cannot be reversed or guessed; no key is needed.
 */
export const digestOf = (value: string): string => createHash('sha256').update(value).digest('base64url');
