import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { PayloadStore } from '../storage/oidc-payloads.js';

/**
 * Single-use JWTs on every instance: client assertions (private_key_jwt) and
 * DPoP proofs. oidc-provider's `ReplayDetection.unique` reads and then writes,
 * so two instances (or two requests on one) given the same `jti` at once could
 * both accept it. Here it is one atomic insert of the same row oidc-provider
 * would write (id: SHA-256 of issuer and jti), kept until the JWT expires: of
 * racing requests exactly one is accepted, wherever they land.
 * @see https://github.com/panva/node-oidc-provider/blob/main/lib/models/replay_detection.js
 */
export function installReplayDetection(provider: Provider, store: PayloadStore, now: () => number = Date.now): void {
  const model = provider.ReplayDetection as unknown as { unique(iss: string, jti: string, exp: number): Promise<boolean> };
  model.unique = async function unique(iss: string, jti: string, exp: number): Promise<boolean> {
    const id = createHash('sha256').update(`${iss}${jti}`).digest('base64url');
    const at = now();
    // exp is seconds since the epoch; a row lives at least a second
    const expiresAt = new Date(Math.max(exp * 1000, at + 1000));
    return store.saveIfAbsent('ReplayDetection', id, { iss, jti: id }, expiresAt, new Date(at));
  };
}
