/**
 * The OpenID Provider under test, for the conformance plans (test/conformance).
 *
 * API:
 * - `startConformanceOp(options?)` → `ConformanceOp`: one real Gatehouse process
 *   (`node dist/main.js`, so `npm run build` first) on a fresh SQLite database, with a
 *   stand-in Google (a real oidc-provider, test/support/upstreams/fake-oidc.ts) as the
 *   only upstream people sign in with. Call it once per test file, in `beforeAll`.
 *   `options.https: true` runs it as `ISSUER=https://localhost:<port>` with
 *   `TRUST_PROXY=true`, the way a TLS-ending proxy presents it; `op.fetch` and the
 *   browser (support/browser.ts) then reach it over http with `X-Forwarded-Proto: https`.
 *   `options.env` adds or overrides server variables (e.g. `REGISTRATION: 'open'`).
 * - `op.createClient(spec)`: a client made with the real CLI (`gatehouse clients
 *   create`). Before the server starts it is simply stored; after, it waits until the
 *   server knows the client (CLI changes reach it within CHANGE_POLL_MS).
 * - `op.fetch(url, init)`: fetch that reaches the issuer (through the https edge when
 *   `https` is on); every helper in support/protocol.ts uses it. Redirects are not followed.
 * - `op.registrationToken()`: an initial access token for dynamic registration (CLI).
 * - `op.cli(args)`: runs any other `gatehouse` command on the op's database.
 * - `op.stop()`: stops Gatehouse and the stand-in, and drops the database.
 *
 * The stand-in Google signs in `op.google`'s current user (setUser to change it)
 * without any page of its own, so the browser only ever sees Gatehouse's pages.
 */
import { createTestDatabase, type TestDatabase } from '../../support/databases.js';
import { createClient as cliCreateClient, eventually, migrateOnce } from '../../support/gatehouse.js';
import { freePort, runCli, startServer, type CliResult, type RunningServer } from '../../support/processes.js';
import { startFakeOidc, type FakeOidc } from '../../support/upstreams/fake-oidc.js';
import { httpsEdge } from '../../support/packaging-edge.js';
import { pkcePair } from './protocol.js';

/** Where the browser is sent back to: never a real server, the browser intercepts it (support/browser.ts). */
export const RP_ORIGIN = 'https://rp.conformance.test';
export const DEFAULT_REDIRECT_URI = `${RP_ORIGIN}/cb`;

export interface ClientSpec {
  name?: string;
  /** default: [DEFAULT_REDIRECT_URI] */
  redirectUris?: string[];
  /** default: ['authorization_code', 'refresh_token'] */
  grantTypes?: string[];
  /** default: client_secret_basic */
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** 'optional': `--pkce optional`, what the Basic OP plans (no PKCE) need */
  pkce?: 'optional';
  firstParty?: boolean;
  /** any further `clients create` options, e.g. ['--profile', 'fapi2', '--jwks-file', f] */
  extraArgs?: string[];
}

export interface ConformanceClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  redirectUris: string[];
  authMethod: NonNullable<ClientSpec['authMethod']>;
}

export interface ConformanceOp {
  /** the issuer, as in discovery and `iss` */
  issuer: string;
  /** where the server really listens (plain http) */
  internalUrl: string;
  port: number;
  https: boolean;
  databaseUrl: string;
  google: FakeOidc;
  server: RunningServer;
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  createClient(spec?: ClientSpec): Promise<ConformanceClient>;
  registrationToken(): string;
  cli(args: string[]): CliResult;
  stop(): Promise<void>;
}

export interface StartOptions {
  https?: boolean;
  env?: Record<string, string>;
  /** clients created before the server starts (no waiting) */
  clients?: ClientSpec[];
}

function clientArgs(spec: ClientSpec, redirectUris: string[], authMethod: string): string[] {
  const args = ['--name', spec.name ?? 'Conformance RP', '--auth-method', authMethod];
  for (const g of spec.grantTypes ?? ['authorization_code', 'refresh_token']) args.push('--grant-type', g);
  for (const u of redirectUris) args.push('--redirect-uri', u);
  if (spec.pkce) args.push('--pkce', spec.pkce);
  if (spec.firstParty) args.push('--first-party');
  return [...args, ...(spec.extraArgs ?? [])];
}

function makeClient(databaseUrl: string, spec: ClientSpec): ConformanceClient {
  const redirectUris = spec.redirectUris ?? [DEFAULT_REDIRECT_URI];
  const authMethod = spec.authMethod ?? 'client_secret_basic';
  const { clientId, clientSecret } = cliCreateClient(databaseUrl, clientArgs(spec, redirectUris, authMethod));
  return { clientId, clientSecret, redirectUri: redirectUris[0], redirectUris, authMethod };
}

/** True once the server answers an authorization request for the client with a redirect (it knows it). */
async function serverKnows(op: Pick<ConformanceOp, 'issuer' | 'fetch'>, client: ConformanceClient): Promise<boolean> {
  const { challenge } = await pkcePair();
  const url = new URL(`${op.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: client.redirectUri,
    state: 'probe', code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  const res = await op.fetch(url);
  return res.status === 303 || res.status === 302;
}

export async function startConformanceOp(options: StartOptions = {}): Promise<ConformanceOp> {
  const db: TestDatabase = await createTestDatabase('sqlite');
  migrateOnce(db.url);
  const port = await freePort();
  const edge = httpsEdge(port);
  const issuer = options.https ? edge.issuer : `http://localhost:${port}`;
  const google = await startFakeOidc({ clientId: 'google-client', clientSecret: 'google-secret', redirectUris: [`${issuer}/oauth2/google/callback`], name: 'Google' });
  const early = (options.clients ?? []).map((spec) => makeClient(db.url, spec));
  const server = await startServer({
    DATABASE_URL: db.url,
    PORT: String(port),
    ISSUER: issuer,
    GOOGLE_CLIENT_ID: 'google-client',
    GOOGLE_CLIENT_SECRET: 'google-secret',
    GOOGLE_ISSUER: google.issuer,
    LOG_LEVEL: 'warn',
    ...(options.https ? { TRUST_PROXY: 'true' } : {}),
    ...options.env,
  });
  const opFetch = (url: string | URL, init: RequestInit = {}) =>
    options.https ? edge.edgeFetch(url, init) : fetch(url, { redirect: 'manual', ...init });
  const op: ConformanceOp = {
    issuer, internalUrl: `http://localhost:${port}`, port, https: !!options.https, databaseUrl: db.url, google, server,
    fetch: opFetch,
    async createClient(spec = {}) {
      const client = makeClient(db.url, spec);
      if (client.redirectUris.length) await eventually(() => serverKnows(op, client), `the server to know client ${client.clientId}`);
      else await new Promise((r) => setTimeout(r, 600));
      return client;
    },
    registrationToken() {
      const r = runCli(['registration-tokens', 'create', '--json'], db.url);
      if (r.code !== 0) throw new Error(`registration-tokens create failed: ${r.stderr}`);
      return r.json<{ token: string }>().token;
    },
    cli: (args) => runCli(args, db.url),
    async stop() {
      await server.stop();
      await google.close();
      await db.drop();
    },
  };
  (op as ConformanceOp & { earlyClients: ConformanceClient[] }).earlyClients = early;
  return op;
}

/** The clients passed as `options.clients` to startConformanceOp, in order. */
export function earlyClients(op: ConformanceOp): ConformanceClient[] {
  return (op as ConformanceOp & { earlyClients?: ConformanceClient[] }).earlyClients ?? [];
}
