/**
 * The keys of a client that publishes them at a `jwks_uri` (private_key_jwt).
 * oidc-provider fetches them on first use and then keeps them for at least 60
 * seconds (longer if the response's caching headers say so), even when an
 * assertion names a key it does not have: a client that rotated its key would
 * be refused for that long. Here, an assertion that no cached key verifies
 * fetches the set again, at most once per REFETCH_COOLDOWN_MS per client (so
 * failed assertions cannot make Gatehouse hammer the client's server); an
 * assertion a cached key verifies never fetches.
 */

/** How soon after a fetch of a client's jwks_uri an unverifiable assertion may fetch it again, ms. */
export const REFETCH_COOLDOWN_MS = 5000;

interface ClientKeyStore {
  jwksUri?: string;
  fresh(): boolean;
  refresh(): Promise<void>;
}

const patched = new WeakSet<object>();

export function refetchKeysOnMismatch(client: object, now: () => number = Date.now): void {
  if (patched.has(client) || !(client as { jwksUri?: string }).jwksUri) return;
  patched.add(client);
  const keystore = (client as { asymmetricKeyStore: ClientKeyStore }).asymmetricKeyStore;
  const refresh = keystore.refresh.bind(keystore);
  let fetchedAt: number | undefined;
  // oidc-provider refetches when a verification failed and the set is not fresh
  keystore.fresh = () => fetchedAt !== undefined && now() - fetchedAt < REFETCH_COOLDOWN_MS;
  keystore.refresh = async () => {
    if (keystore.fresh()) return;
    const started = now();
    try {
      await refresh();
    } finally {
      // a failed fetch waits out the cooldown too
      fetchedAt = started;
    }
  };
}
