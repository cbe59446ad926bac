import * as oidc from 'openid-client';
import {
  authorize, chooseUpstream, databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess, textOf,
  type Browser, type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { runCliAsync } from '../support/processes.js';
import { migratedDatabase, payloadAdapter } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import type { UpstreamProfile } from '../../src/federation/upstream.js';
import {
  AccountDisabledError, deleteAccount, disableAccount, enableAccount, findAccount, listAccounts, showAccount, signInWith,
} from '../../src/services/accounts.js';
import { rememberConsent } from '../../src/services/consents.js';

/**
 * `gatehouse accounts …` as a real CLI process against the database of an
 * in-process Gatehouse, whose answers (introspection, refresh, UserInfo,
 * /auth, the upstream sign-in) show the effect at once. Needs `npm run build`.
 */

const ADA = {
  subject: 'acme-ada',
  email: 'Ada.Lovelace-1815@Example.com',
  emailVerified: true,
  name: 'Ada Lovelace-Byron',
  username: 'ada-lovelace-1815',
  raw: { sub: 'acme-ada', login: 'ada-lovelace-1815', access_token: 'upstream-access-secret', at_hash: 'upstream-at-hash', extra: { refresh_token: 'upstream-refresh-secret', team: 'engines' } },
};
const ADA_EMAIL = 'ada.lovelace-1815@example.com';
const BOB = { subject: 'acme-bob', email: 'bob@example.com', emailVerified: true, name: 'Bob Example' };

/** Every row of every table as lowercase text: where an erased person must no longer appear. */
async function everyRowText(database: Database): Promise<Record<string, string>> {
  const db = database.prisma;
  const tables = database.kind === 'sqlite'
    ? await db.$queryRawUnsafe<{ name: string }[]>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    : await db.$queryRawUnsafe<{ name: string }[]>("SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
  expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['Account', 'FederatedIdentity', 'Consent', 'OidcPayload', 'AuditEvent']));
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    // PostgreSQL: each row as JSON text (any column type); SQLite: the rows as they are
    const rows = await db.$queryRawUnsafe<unknown[]>(database.kind === 'sqlite' ? `SELECT * FROM "${name}"` : `SELECT row_to_json(t)::text AS row FROM "${name}" t`);
    out[name] = JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)).toLowerCase();
  }
  return out;
}

const tablesHolding = (text: Record<string, string>, needle: string) => Object.keys(text).filter((t) => text[t].includes(needle.toLowerCase())).sort();

describe.each(databaseKinds())('gatehouse accounts on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;
  let rp: oidc.Configuration;
  const cli = (...args: string[]) => runCliAsync(args, server.databaseUrl);

  // Ada: two browsers signed in, tokens from the first; Bob: another person, untouched by what happens to Ada
  let ada: string;
  let adaBrowser: Browser;
  let adaTokens: { access_token: string; refresh_token?: string };
  let bob: string;
  let bobBrowser: Browser;
  let bobTokens: { access_token: string; refresh_token?: string };

  const introspect = async (token: string) => (await oidc.tokenIntrospection(rp, token)).active;
  const userinfoStatus = async (token: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  const refreshError = (token: string) => oidc.refreshTokenGrant(rp, token).then(() => 'refreshed', (err: { error?: string }) => err.error ?? String(err));
  /** Where /auth sends a browser that may hold a session: the app (silent), or an interaction. */
  async function authFor(browser: Browser): Promise<{ silent: boolean; page?: string }> {
    const params = new URLSearchParams({
      client_id: client.clientId, response_type: 'code', redirect_uri: client.redirectUri, scope: 'openid email profile', state: 's', nonce: 'n',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const { last } = await browser.follow(await browser.get(`/auth?${params}`));
    if (last.location?.startsWith(client.redirectUri)) return { silent: true };
    return { silent: false, page: textOf(last) };
  }
  /** A new browser through the upstream as `who`: the page it ends on. */
  async function upstreamSignIn(who: Parameters<FakeUpstream['signInAs']>[0]) {
    acme.signInAs(who);
    const b = server.browser();
    const { uid } = await authorize(b, client);
    await chooseUpstream(b, uid, 'acme');
    const bounce = await b.get(acme.redirectBack());
    return b.get(bounce.location!);
  }
  const auditOf = async (target: string) => {
    const r = await cli('audit', 'list', '--target', target, '--json');
    expect(r.code).toBe(0);
    return r.json<{ action: string; actorType: string; outcome: string; details: Record<string, unknown> }[]>();
  };

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    client = await server.createClient({ name: 'Sample App' });

    acme.signInAs(ADA);
    adaBrowser = server.browser();
    const first = await signIn(adaBrowser, client, acme, { scope: 'openid email profile offline_access', prompt: 'consent' });
    let tokens;
    ({ rp, tokens } = await exchangeCode(server, first.authorization, first.callback));
    adaTokens = tokens;
    ada = tokens.claims()!.sub;
    await signIn(server.browser(), client, acme); // a second session

    acme.signInAs(BOB);
    bobBrowser = server.browser();
    const bobs = await signIn(bobBrowser, client, acme, { scope: 'openid email profile offline_access', prompt: 'consent' });
    bobTokens = (await exchangeCode(server, bobs.authorization, bobs.callback)).tokens;
    bob = (await server.database.prisma.federatedIdentity.findUnique({ where: { provider_subject: { provider: 'acme', subject: 'acme-bob' } } }))!.accountId;
    expect(adaTokens.refresh_token).toEqual(expect.any(String));
    expect(bobTokens.refresh_token).toEqual(expect.any(String));
  });
  afterAll(() => server?.close());

  it('lists accounts by id, filtered and paged', async () => {
    const all = await cli('accounts', 'list', '--json');
    expect(all.code).toBe(0);
    const ids = all.json<{ id: string }[]>().map((a) => a.id);
    expect(ids).toEqual([ada, bob].sort());
    expect(all.json()[ids.indexOf(ada)]).toMatchObject({ email: ADA_EMAIL, name: ADA.name, disabled: false, providers: ['acme'] });

    expect((await cli('accounts', 'list', '--email', 'ADA.Lovelace-1815@example.COM', '--json')).json().map((a: { id: string }) => a.id)).toEqual([ada]);
    expect((await cli('accounts', 'list', '--provider', 'acme', '--json')).json()).toHaveLength(2);
    expect((await cli('accounts', 'list', '--provider', 'github', '--json')).json()).toEqual([]);
    expect((await cli('accounts', 'list', '--disabled', '--json')).json()).toEqual([]);
    const page1 = (await cli('accounts', 'list', '--limit', '1', '--json')).json<{ id: string }[]>();
    const page2 = (await cli('accounts', 'list', '--limit', '1', '--after', page1[0].id, '--json')).json<{ id: string }[]>();
    expect([...page1, ...page2].map((a) => a.id)).toEqual([ada, bob].sort());

    const human = await cli('accounts', 'list');
    expect(human.stdout).toContain(`${ada}  ${ADA_EMAIL}  ${ADA.name}  acme`);
    const bad = await cli('accounts', 'list', '--limit', '0');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--limit: must be a whole number from 1 to 1000');
  });

  it('shows claims, identities (without token-like profile fields), consents and active sessions', async () => {
    const r = await cli('accounts', 'show', ada, '--json');
    expect(r.code).toBe(0);
    const shown = r.json();
    expect(shown).toMatchObject({ id: ada, email: ADA_EMAIL, emailVerified: true, name: ADA.name, username: ADA.username, disabled: false, disabledAt: null });
    expect(shown.identities).toEqual([{
      provider: 'acme', subject: 'acme-ada', email: ADA_EMAIL, emailVerified: true, linkedAt: expect.any(String), updatedAt: expect.any(String),
      profile: { sub: 'acme-ada', login: ADA.username, extra: { team: 'engines' } },
    }]);
    expect(shown.consents).toEqual([{ clientId: client.clientId, clientName: 'Sample App', grantedAt: expect.any(String), updatedAt: expect.any(String) }]);
    expect(shown.sessions.active).toBe(2);
    expect(shown.sessions.latest).toHaveLength(2);
    for (const s of shown.sessions.latest) {
      expect(new Date(s.expiresAt).getTime()).toBeGreaterThan(Date.now());
      expect(s.clients).toEqual([client.clientId]);
    }
    expect(r.stdout).not.toMatch(/upstream-(access|refresh)-secret|upstream-at-hash/);

    const human = await cli('accounts', 'show', ada);
    expect(human.stdout).toContain(`sub       ${ada}`);
    expect(human.stdout).toContain('state     enabled');
    expect(human.stdout).toMatch(/identities \(1\):\n {2}acme {2}acme-ada {2}ada\.lovelace-1815@example\.com \(verified\) {2}linked \d{4}-/);
    expect(human.stdout).toContain(`consents (1):\n  ${client.clientId}  Sample App  granted `);
    expect(human.stdout).toContain('active sessions: 2');
    expect(human.stdout).not.toContain('upstream-access-secret');

    for (const sub of ['show', 'disable', 'enable', 'delete']) {
      const unknown = await cli('accounts', sub, 'nobody-here');
      expect([sub, unknown.code, unknown.stderr]).toEqual([sub, 1, 'gatehouse: no account with id nobody-here\n']);
    }
  });

  it('disable ends every session and stored token at once and refuses sign-in with a 403 page', async () => {
    // before: everything of Ada works, and her /auth is silent
    expect(await introspect(adaTokens.access_token)).toBe(true);
    expect(await userinfoStatus(adaTokens.access_token)).toBe(200);
    expect(await authFor(adaBrowser)).toEqual({ silent: true });
    const payloads = () => server.database.prisma.oidcPayload.count({ where: { accountId: ada } });
    expect(await payloads()).toBeGreaterThan(0);

    const r = await cli('accounts', 'disable', ada, '--json');
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ id: ada, changed: true, endedArtifacts: expect.any(Number) });
    expect(r.json().endedArtifacts).toBeGreaterThan(0);
    expect(await payloads()).toBe(0);

    expect(await introspect(adaTokens.access_token)).toBe(false);
    expect(await refreshError(adaTokens.refresh_token!)).toBe('invalid_grant');
    expect(await userinfoStatus(adaTokens.access_token)).toBe(401);
    // the session is gone: the login page, not a silent answer
    const next = await authFor(adaBrowser);
    expect(next.silent).toBe(false);
    expect(next.page).toContain('Sample App wants you to sign in.');
    expect(next.page).toContain('Continue with Acme SSO');

    // sign-in through the upstream: refused, and nothing of it stored
    const refused = await upstreamSignIn({ ...ADA, name: 'Renamed While Disabled' });
    expect(refused.status).toBe(403);
    expect(textOf(refused)).toContain('This account is disabled. Contact the administrator.');
    expect(refused.location).toBeNull();
    expect((await server.database.prisma.account.findUnique({ where: { id: ada } }))?.name).toBe(ADA.name);
    expect(await payloads()).toBe(0);

    // Bob is untouched
    expect(await introspect(bobTokens.access_token)).toBe(true);
    expect(await userinfoStatus(bobTokens.access_token)).toBe(200);

    const shown = (await cli('accounts', 'show', ada, '--json')).json();
    expect(shown).toMatchObject({ disabled: true, disabledAt: expect.any(String), sessions: { active: 0, latest: [] } });
    expect((await cli('accounts', 'list', '--disabled', '--json')).json().map((a: { id: string }) => a.id)).toEqual([ada]);
    expect((await cli('accounts', 'show', ada)).stdout).toContain('state     disabled since ');

    // again: said so, nothing changed
    const again = await cli('accounts', 'disable', ada);
    expect([again.code, again.stdout]).toEqual([0, `account ${ada} is already disabled (since ${shown.disabledAt}); nothing changed\n`]);

    const events = await auditOf(ada);
    expect(events.filter((e) => e.action === 'account.disabled')).toEqual([expect.objectContaining({ actorType: 'cli', outcome: 'success' })]);
    expect(events.filter((e) => e.action === 'sign_in.failed')).toEqual([expect.objectContaining({ outcome: 'failure', details: { provider: 'acme', kind: 'disabled' } })]);
  });

  it('the hot path serves no disabled account, even one whose session and tokens survived', async () => {
    // a disable that raced a token request: the flag is set, the artifacts are still there
    await server.database.prisma.account.update({ where: { id: bob }, data: { disabledAt: new Date() } });
    try {
      expect(await server.database.prisma.oidcPayload.count({ where: { accountId: bob } })).toBeGreaterThan(0);
      expect(await introspect(bobTokens.access_token)).toBe(false);
      expect(await userinfoStatus(bobTokens.access_token)).toBe(401);
      expect(await refreshError(bobTokens.refresh_token!)).toBe('invalid_grant');
      expect((await authFor(bobBrowser)).silent).toBe(false);
    } finally {
      await server.database.prisma.account.update({ where: { id: bob }, data: { disabledAt: null } });
    }
    // the same token and session work again once the flag is clear: it was the flag that refused them
    expect(await introspect(bobTokens.access_token)).toBe(true);
    expect(await userinfoStatus(bobTokens.access_token)).toBe(200);
    expect(await authFor(bobBrowser)).toEqual({ silent: true });
  });

  it('enable lets the person sign in again; what disable ended stays ended', async () => {
    const r = await cli('accounts', 'enable', ada);
    expect([r.code, r.stdout]).toEqual([0, `enabled account ${ada}; the person signs in again\n`]);
    const again = await cli('accounts', 'enable', ada);
    expect([again.code, again.stdout]).toEqual([0, `account ${ada} is not disabled; nothing changed\n`]);

    acme.signInAs(ADA);
    const b = server.browser();
    const { authorization, callback } = await signIn(b, client, acme);
    const { tokens } = await exchangeCode(server, authorization, callback);
    expect(tokens.claims()!.sub).toBe(ada);
    expect(await userinfoStatus(tokens.access_token)).toBe(200);
    // the old ones stay ended
    expect(await introspect(adaTokens.access_token)).toBe(false);
    expect(await refreshError(adaTokens.refresh_token!)).toBe('invalid_grant');

    const events = await auditOf(ada);
    expect(events.filter((e) => e.action === 'account.enabled')).toEqual([expect.objectContaining({ actorType: 'cli', outcome: 'success' })]);
  });

  it('delete erases the account, its identities, consents and artifacts; no row anywhere names the person', async () => {
    const prisma = server.database.prisma;
    const before = await everyRowText(server.database);
    // the search finds the person while the account exists
    expect(tablesHolding(before, ADA_EMAIL)).toEqual(expect.arrayContaining(['Account', 'FederatedIdentity']));
    expect(tablesHolding(before, ADA.name)).toEqual(['Account']);
    expect(await prisma.oidcPayload.count({ where: { accountId: ada } })).toBeGreaterThan(0);

    const r = await cli('accounts', 'delete', ada, '--json');
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ id: ada, identities: 1, consents: 1, endedArtifacts: expect.any(Number) });

    expect(await prisma.account.count({ where: { id: ada } })).toBe(0);
    expect(await prisma.federatedIdentity.count({ where: { accountId: ada } })).toBe(0);
    expect(await prisma.consent.count({ where: { accountId: ada } })).toBe(0);
    expect(await prisma.oidcPayload.count({ where: { accountId: ada } })).toBe(0);
    const after = await everyRowText(server.database);
    for (const personal of [ADA_EMAIL, ADA.name, ADA.username, 'Renamed While Disabled']) expect([personal, tablesHolding(after, personal)]).toEqual([personal, []]);
    // Bob's remain
    expect(tablesHolding(after, BOB.email)).toEqual(expect.arrayContaining(['Account', 'FederatedIdentity']));
    expect(await introspect(bobTokens.access_token)).toBe(true);

    // the trail is kept, every change by the CLI, the deletion with counts only
    const events = await auditOf(ada);
    const changes = events.filter((e) => e.action.startsWith('account.') && e.action !== 'account.created');
    expect(changes.map((e) => [e.action, e.actorType])).toEqual([['account.deleted', 'cli'], ['account.enabled', 'cli'], ['account.disabled', 'cli']]);
    expect(changes[0].details).toEqual({ identities: 1, consents: 1, endedArtifacts: expect.any(Number) });

    const gone = await cli('accounts', 'delete', ada);
    expect([gone.code, gone.stderr]).toEqual([1, `gatehouse: no account with id ${ada}\n`]);
    expect((await cli('accounts', 'list', '--json')).json().map((a: { id: string }) => a.id)).toEqual([bob]);
  });

  it('grant-role and revoke-role, by id or email: shown by show and list, audited as the CLI, one-line errors', async () => {
    const shown = async () => (await cli('accounts', 'show', bob, '--json')).json<{ role: string | null }>().role;
    expect(await shown()).toBeNull();
    expect((await cli('accounts', 'show', bob)).stdout).toContain('role      none (no console access)');

    const granted = await cli('accounts', 'grant-role', 'BOB@Example.com', 'admin');
    expect([granted.code, granted.stdout, granted.stderr]).toEqual([0, `granted role admin to account ${bob}\n`, '']);
    const again = await cli('accounts', 'grant-role', bob, 'admin');
    expect([again.code, again.stdout]).toEqual([0, `account ${bob} already has role admin; nothing changed\n`]);
    const changed = await cli('accounts', 'grant-role', bob, 'viewer', '--json');
    expect([changed.code, changed.json()]).toEqual([0, { accountId: bob, changed: true, role: 'viewer', previousRole: 'admin', disabled: false }]);
    expect(await shown()).toBe('viewer');
    expect((await cli('accounts', 'show', bob)).stdout).toContain('role      viewer\n');
    expect((await cli('accounts', 'list')).stdout).toContain(`${bob}  ${BOB.email}  ${BOB.name}  acme  role viewer`);
    expect((await cli('accounts', 'list', '--json')).json<{ id: string }[]>().find((a) => a.id === bob)).toMatchObject({ role: 'viewer' });

    const revoked = await cli('accounts', 'revoke-role', 'bob@example.com');
    expect([revoked.code, revoked.stdout]).toEqual([0, `revoked role viewer from account ${bob}; it has no console access\n`]);
    const none = await cli('accounts', 'revoke-role', bob, '--json');
    expect([none.code, none.json()]).toEqual([0, { accountId: bob, changed: false, role: null, previousRole: null, disabled: false }]);
    expect(await shown()).toBeNull();

    const events = (await auditOf(bob)).filter((e) => e.action.startsWith('account.role_'));
    expect(events.map((e) => [e.action, e.actorType, e.details])).toEqual([
      ['account.role_revoked', 'cli', { role: 'viewer' }],
      ['account.role_granted', 'cli', { role: 'viewer', previousRole: 'admin' }],
      ['account.role_granted', 'cli', { role: 'admin', previousRole: null }],
    ]);

    // refusals: one line, exit 1 (nothing changed) or 2 (usage)
    const dup = 'dup-of-bob';
    await server.database.prisma.account.create({ data: { id: dup, email: BOB.email.toUpperCase(), emailVerified: true } });
    try {
      const failures = [
        [['grant-role', bob, 'root'], 1, 'gatehouse: role: must be one of admin, viewer\n'],
        [['grant-role', 'nobody-here', 'admin'], 1, 'gatehouse: no account with id nobody-here\n'],
        [['revoke-role', 'nobody@example.com'], 1, 'gatehouse: no account with email nobody@example.com\n'],
        [['grant-role', BOB.email, 'admin'], 1, `gatehouse: 2 accounts have email ${BOB.email} (${[bob, dup].sort().join(', ')}): name one by its id\n`],
        [['grant-role', bob], 2, 'gatehouse: expected 2 arguments: <account|email> <admin|viewer>\n'],
        [['grant-role', bob, 'admin', 'extra'], 2, 'gatehouse: expected 2 arguments: <account|email> <admin|viewer>\n'],
        [['revoke-role'], 2, 'gatehouse: expected exactly one account id (sub) or email\n'],
        [['grant-role', bob, 'admin', '--force'], 2, expect.stringMatching(/^gatehouse: unknown option --force/)],
      ] as const;
      // refusals change nothing, so they run at once
      const runs = await Promise.all(failures.map(([args]) => cli('accounts', ...args)));
      expect(runs.map((r, i) => [failures[i][0], r.code, r.stderr, r.stdout])).toEqual(failures.map(([args, code, stderr]) => [args, code, stderr, '']));
      expect(await shown()).toBeNull();
      expect((await auditOf(bob)).filter((e) => e.action.startsWith('account.role_'))).toHaveLength(3);
    } finally {
      await server.database.prisma.account.delete({ where: { id: dup } });
    }

    const help = await cli('accounts', 'grant-role', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: gatehouse accounts grant-role <account|email> <admin|viewer> [--json]');
    expect((await cli('accounts', '--help')).stdout).toMatch(/revoke-role <account\|email>\s+take its console role away/);
  });
});

describe.each(databaseKinds())('account rules on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;
  const profile = (over: Partial<UpstreamProfile> & { subject: string }): UpstreamProfile => ({
    provider: 'github', email: null, emailVerified: false, name: null, username: null, picture: null, raw: {}, ...over,
  });

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  it('refuses the sign-in of a disabled account, by its own identity or by linking a new one, and stores nothing of it', async () => {
    const { account } = await signInWith(database.prisma, profile({ subject: 'r-1', email: 'rule@example.com', emailVerified: true, name: 'Before' }), { linkVerifiedEmails: true });
    expect((await disableAccount(database.prisma, account.id)).changed).toBe(true);

    const own = signInWith(database.prisma, profile({ subject: 'r-1', email: 'rule@example.com', emailVerified: true, name: 'After' }), { linkVerifiedEmails: true });
    await expect(own).rejects.toBeInstanceOf(AccountDisabledError);
    await expect(own).rejects.toMatchObject({ code: 'conflict', accountId: account.id });
    const linking = signInWith(database.prisma, profile({ provider: 'google', subject: 'g-r-1', email: 'rule@example.com', emailVerified: true }), { linkVerifiedEmails: true });
    await expect(linking).rejects.toBeInstanceOf(AccountDisabledError);
    expect((await database.prisma.account.findUnique({ where: { id: account.id } }))?.name).toBe('Before');
    expect(await database.prisma.federatedIdentity.count({ where: { provider: 'google', subject: 'g-r-1' } })).toBe(0);
    expect(await findAccount(database.hot, account.id)).toBeNull();

    expect((await enableAccount(database.prisma, account.id)).changed).toBe(true);
    expect(await findAccount(database.hot, account.id)).toMatchObject({ id: account.id, name: 'Before' });
    expect((await signInWith(database.prisma, profile({ subject: 'r-1', name: 'After' }), { linkVerifiedEmails: true })).account).toMatchObject({ id: account.id, name: 'After' });
  });

  it('disable and delete end that account\'s artifacts, also those stored under its remembered grants, and no one else\'s', async () => {
    const { account } = await signInWith(database.prisma, profile({ subject: 'r-2' }), { linkVerifiedEmails: false });
    const { account: other } = await signInWith(database.prisma, profile({ subject: 'r-3' }), { linkVerifiedEmails: false });
    const sessions = payloadAdapter(database, 'Session');
    const grants = payloadAdapter(database, 'Grant');
    const refresh = payloadAdapter(database, 'RefreshToken');
    const artifacts = async () => {
      await sessions.upsert('s-2', { accountId: account.id }, 3600);
      await grants.upsert('g-2', { accountId: account.id, clientId: 'app' }, 3600);
      // an artifact of its grant that names no account
      await refresh.upsert('rt-2', { grantId: 'g-2' }, 3600);
    };
    await artifacts();
    await sessions.upsert('s-3', { accountId: other.id }, 3600);
    await rememberConsent(database.prisma, account.id, 'app', 'g-2');

    expect(await disableAccount(database.prisma, account.id)).toMatchObject({ changed: true, endedArtifacts: 2 });
    expect([await sessions.find('s-2'), await grants.find('g-2'), await refresh.find('rt-2')]).toEqual([undefined, undefined, undefined]);
    expect(await sessions.find('s-3')).toBeDefined();
    // the consent whose grant ended goes too: no app is shown access it no longer has
    expect(await database.prisma.consent.count({ where: { accountId: account.id } })).toBe(0);
    expect(await disableAccount(database.prisma, account.id)).toMatchObject({ changed: false, endedArtifacts: 0 });

    await artifacts();
    await rememberConsent(database.prisma, account.id, 'app', 'g-2');
    expect(await deleteAccount(database.prisma, account.id)).toEqual({ id: account.id, identities: 1, consents: 1, endedArtifacts: 2 });
    expect([await sessions.find('s-2'), await grants.find('g-2'), await refresh.find('rt-2')]).toEqual([undefined, undefined, undefined]);
    expect(await database.prisma.consent.count({ where: { accountId: account.id } })).toBe(0);
    expect(await database.prisma.federatedIdentity.count({ where: { accountId: account.id } })).toBe(0);
    expect(await sessions.find('s-3')).toBeDefined();
    expect(await findAccount(database.hot, other.id)).toMatchObject({ id: other.id });
  });

  it('refuses bad list input and unknown ids, changing nothing', async () => {
    await expect(listAccounts(database.prisma, { limit: 1001 })).rejects.toMatchObject({ code: 'invalid', problems: [{ path: ['limit'] }] });
    await expect(listAccounts(database.prisma, { email: '  ' })).rejects.toMatchObject({ code: 'invalid', problems: [{ path: ['email'] }] });
    expect(await listAccounts(database.prisma, { after: 'a\u0000b' })).toEqual([]);
    const before = await database.prisma.auditEvent.count();
    for (const rule of [disableAccount, enableAccount, deleteAccount, showAccount]) {
      await expect(rule(database.prisma, 'nobody')).rejects.toMatchObject({ code: 'not_found', message: 'no account with id nobody' });
    }
    expect(await database.prisma.auditEvent.count()).toBe(before);
  });
});
