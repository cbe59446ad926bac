import * as oidc from 'openid-client';
import { runCli } from './processes.js';

/** A relying party (openid-client) configured against a running Gatehouse. */
export function relyingParty(issuer: string, clientId: string, secret: string, method: 'basic' | 'post' = 'basic') {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    undefined,
    method === 'basic' ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret),
    // Gatehouse runs on plain http in tests only.
    { execute: [oidc.allowInsecureRequests] },
  );
}

/** Databases this process already migrated with the CLI. */
const migrated = new Set<string>();

/** `gatehouse migrate`, once per database: only migrate creates one (the server also migrates at start). */
export function migrateOnce(databaseUrl: string): void {
  if (migrated.has(databaseUrl)) return;
  const r = runCli(['migrate'], databaseUrl);
  if (r.code !== 0) throw new Error(`migrate failed: ${r.stderr}`);
  migrated.add(databaseUrl);
}

/** Creates an API with the real CLI (migrating a new database first); throws with the CLI's stderr on failure. */
export function createApi(databaseUrl: string, args: string[]) {
  migrateOnce(databaseUrl);
  const r = runCli(['resources', 'create', '--json', ...args], databaseUrl);
  if (r.code !== 0) throw new Error(`resources create failed: ${r.stderr}`);
  return r.json();
}

/** Creates a client with the real CLI and returns its id and one-time secret. */
export function createClient(databaseUrl: string, args: string[]): { clientId: string; clientSecret: string } {
  migrateOnce(databaseUrl);
  const r = runCli(['clients', 'create', '--json', ...args], databaseUrl);
  if (r.code !== 0) throw new Error(`clients create failed: ${r.stderr}`);
  return r.json();
}

/** Polls until fn resolves true (or the deadline passes): for changes that propagate. */
export async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A raw token request, for error paths openid-client would refuse to send. */
export async function tokenRequest(issuer: string, body: Record<string, string>, auth?: [string, string]) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(auth[0])}:${encodeURIComponent(auth[1])}`).toString('base64')}`;
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
