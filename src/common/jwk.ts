/**
 * JWK members that only private (or symmetric) keys have (RFC 7518 §6.2.2,
 * §6.3.2, §6.4): never published, never accepted as a client's public key.
 * (The resource kit keeps its own copy: it imports nothing of the server.)
 */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The public half of a JWK: every member but the private ones. */
export function publicJwk<T extends object>(jwk: T): T {
  return Object.fromEntries(Object.entries(jwk).filter(([member]) => !PRIVATE_JWK_MEMBERS.includes(member))) as T;
}
