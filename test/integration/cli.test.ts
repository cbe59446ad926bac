import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseKinds, createTestDatabase, POSTGRES_URL, type Kind, type TestDatabase } from '../support/databases.js';
import { ROOT, runCli, runCliAsync, startServer, type CliResult } from '../support/processes.js';
import { loadMigrations, migrate } from '../../src/storage/migrate.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { findClient, listClients } from '../../src/storage/clients.js';
import { findApi, listApis } from '../../src/storage/apis.js';
import { readChangeStamp } from '../../src/storage/change-stamp.js';
import { hashSecret, verifySecret } from '../../src/services/client-secrets.js';

/**
 * The admin CLI end to end: the real bin/gatehouse.js (which runs dist/, so
 * `npm run build` first) against a real SQLite file and, when
 * GATEHOUSE_TEST_POSTGRES_URL is set, a real PostgreSQL database. The database
 * is checked directly through the storage layer, so "nothing was written" means
 * the rows and the change stamp are byte-for-byte the same.
 */

const FIXTURES = join(ROOT, 'test', 'fixtures', 'cli');
const fixture = (name: string) => join(FIXTURES, name);

/** A generated client secret: 32 random bytes, base64url. */
const SECRET = /^[A-Za-z0-9_-]{43,}$/;
const ARGON2ID = /^\$argon2id\$/;

/** exit 0, nothing on stderr */
function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
}

/** the given exit code, nothing on stdout, exactly one "gatehouse: ..." line on stderr matching `message` */
function expectOneLineFailure(r: CliResult, code: 1 | 2, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
}

describe('gatehouse --help', () => {
  // Help never opens the database: a URL that would fail proves it.
  const help = (args: string[]) => runCli(args, 'mysql://not-used');

  it.each([
    [['--help'], /^Usage: gatehouse <command>/, ['clients', 'resources', 'seed', 'migrate', 'DATABASE_URL', 'Exit codes']],
    [[], /^Usage: gatehouse <command>/, ['clients create|list|show|update|delete|rotate-secret']],
    [['clients', '--help'], /^Usage: gatehouse clients <command>/, ['create', 'rotate-secret', '--first-party', '--third-party', '--redirect-uri']],
    [['clients', 'create', '--help'], /^Usage: gatehouse clients create \[options\]\n/, ['--auth-method', '--id <client-id>']],
    [['resources', 'update', '--help'], /^Usage: gatehouse resources update <identifier> \[options\]\n/, ['--scope', '--no-allow-registered-clients', 'keep their values']],
    [['apis', 'show', '-h'], /^Usage: gatehouse apis show <identifier> \[--json\]\n/, ['Show one API']],
    [['resources', '--help'], /^Usage: gatehouse resources <command>/, ['--identifier', '--ttl', '--format', 'delete <identifier>', 'update <identifier>']],
    [['seed', '--help'], /^Usage: gatehouse seed <file>/, ['nothing is written']],
    [['migrate', '--help'], /^Usage: gatehouse migrate/, ['_prisma_migrations']],
  ])('gatehouse %j prints usage and exits 0', (args, usage, mentions) => {
    const r = help(args as string[]);
    expectOk(r);
    expect(r.stdout).toMatch(usage);
    for (const m of mentions) expect(r.stdout).toContain(m);
  });

  it.each([
    [['clients', 'create', '--help'], ['rotate-secret', '--third-party', 'Commands:', 'Options for']],
    [['clients', 'show', '--help'], ['--name', '--auth-method', 'create', 'rotate-secret']],
    [['resources', 'create', '--help'], ['--no-allow-registered-clients', 'delete <identifier>']],
  ])('gatehouse %j prints that subcommand alone: none of %j', (args, absent) => {
    const r = help(args as string[]);
    expectOk(r);
    for (const a of absent) expect(r.stdout).not.toContain(a);
  });
});

describe('did you mean', () => {
  // usage errors never open the database
  const cli = (...args: string[]) => runCli(args, 'mysql://not-used');

  it.each<[string[], RegExp]>([
    [['clinets', 'list'], /^gatehouse: unknown command: clinets: did you mean clients\? \(see gatehouse --help\)\n$/],
    [['resoruces'], /did you mean resources\?/],
    [['registration'], /did you mean registration-tokens\?/],
    [['grnats', 'list'], /did you mean grants\?/],
    [['clients', 'lsit'], /^gatehouse: unknown command: clients lsit: did you mean clients list\? \(see gatehouse clients --help\)\n$/],
    [['apis', 'udpate', 'https://x.example.com'], /did you mean apis update\?/],
    [['clients', 'create', '--nmae', 'x'], /^gatehouse: unknown option --nmae: did you mean --name\? \(see gatehouse clients create --help\)\n$/],
    [['clients', 'update', 'x', '--thrid-party'], /did you mean --third-party\?/],
    [['resources', 'create', '--identifer', 'https://x.example.com'], /did you mean --identifier\?/],
    [['seed', 'f.yaml', '--jsno'], /did you mean --json\? \(see gatehouse seed --help\)/],
  ])('gatehouse %j suggests the nearest name, in one line, exit 2', (args, message) => {
    const r = cli(...args);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
    expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
  });

  it.each([['frobnicate'], ['clients', 'frobnicate'], ['clients', 'create', '--colour', 'blue']])('gatehouse %j suggests nothing far-fetched', (...args) => {
    const r = cli(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('did you mean');
    expect(r.stderr).toMatch(/^gatehouse: unknown (command|option):? [^\n]+ \(see gatehouse [a-z ]*--help\)\n$/);
  });
});

describe.each(databaseKinds())('gatehouse CLI on %s', (kind: Kind) => {
  let testDb: TestDatabase;
  let database: Database;
  /** the CLI's working directory: no stray .env, and a place for generated seed files */
  let cwd: string;

  const cli = (...args: string[]) => runCli(args, testDb.url, { cwd });
  const db = () => database.prisma;

  /** everything the CLI may write, including hashes, timestamps and the change stamp */
  async function snapshot(): Promise<string> {
    return JSON.stringify({
      clients: await listClients(db()),
      resources: await listApis(db()),
      stamp: await readChangeStamp(db()),
    });
  }

  /** writes a generated seed file into cwd and returns its path */
  function seedFile(name: string, content: string): string {
    const path = join(cwd, name);
    writeFileSync(path, content);
    return path;
  }

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
    expectOk(cli('migrate'));
    database = await openDatabase({ url: testDb.url, kind }, { poolSize: 2 });
  });

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  describe('migrate', () => {
    let fresh: TestDatabase;
    beforeAll(async () => {
      fresh = await createTestDatabase(kind);
    });
    afterAll(async () => {
      await fresh?.drop();
    });

    it('applies the migrations once, then reports the database up to date', () => {
      const first = runCli(['migrate', '--json'], fresh.url, { cwd });
      expectOk(first);
      const applied = first.json();
      expect(applied.database).toBe(kind);
      expect(applied.alreadyApplied).toBe(0);
      expect(applied.applied.length).toBeGreaterThanOrEqual(1);
      for (const name of applied.applied) expect(name).toMatch(/^\d{14}_\w+$/);

      const second = runCli(['migrate', '--json'], fresh.url, { cwd });
      expectOk(second);
      expect(second.json()).toEqual({ database: kind, applied: [], alreadyApplied: applied.applied.length });

      const human = runCli(['migrate'], fresh.url, { cwd });
      expectOk(human);
      expect(human.stdout).toBe(`${kind} database is up to date (${applied.applied.length} migration(s) applied)\n`);
    });

    it('lists nothing on an empty database, and says how to start', () => {
      expect(runCli(['clients', 'list', '--json'], fresh.url, { cwd }).json()).toEqual([]);
      const clients = runCli(['clients', 'list'], fresh.url, { cwd });
      expectOk(clients);
      expect(clients.stdout).toMatch(/^no clients .*gatehouse clients create/);
      const apis = runCli(['resources', 'list'], fresh.url, { cwd });
      expectOk(apis);
      expect(apis.stdout).toMatch(/^no APIs .*gatehouse resources create/);
    });
  });

  describe('only migrate creates or migrates a database', () => {
    /** every kind of command that opens the database */
    const commands = [['clients', 'list'], ['resources', 'list', '--json'], ['keys', 'list'], ['audit', 'list'], ['clients', 'create', '--name', 'X'], ['resources', 'update', 'https://x.example.com', '--name', 'X']];

    it.each(commands)('refuses %j on a database that does not exist, names it, and creates nothing', async (...args) => {
      let url: string;
      let where: RegExp;
      let gone: () => Promise<boolean>;
      if (kind === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'gatehouse-missing-'));
        const path = join(dir, 'nested', 'gatehouse.db');
        url = `file:${path}`;
        where = new RegExp(`no database at ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: run \`gatehouse migrate\``);
        gone = async () => !existsSync(join(dir, 'nested'));
      } else {
        const u = new URL(POSTGRES_URL!);
        u.pathname = '/gatehouse_missing_db';
        u.password = 'sekret-pw';
        url = u.toString();
        where = /no database at postgresql:\/\/[^ ]*\/gatehouse_missing_db: create it \(createdb\), then run `gatehouse migrate`/;
        gone = async () => true;
      }
      const r = runCli(args as string[], url, { cwd });
      expectOneLineFailure(r, 1, where);
      expect(r.stderr).not.toContain('sekret-pw');
      expect(await gone()).toBe(true);
    });

    it.each(commands)('refuses %j on an empty, unmigrated database, and changes nothing', async (...args) => {
      const empty = await createTestDatabase(kind);
      try {
        if (kind === 'sqlite') writeFileSync(empty.url.slice('file:'.length), '');
        const r = runCli(args as string[], empty.url, { cwd });
        expectOneLineFailure(r, 1, /the database at .* has no Gatehouse tables: run `gatehouse migrate` \(or start the server, which migrates\)/);
        if (kind === 'sqlite') expect(statSync(empty.url.slice('file:'.length)).size).toBe(0);
        // still empty: migrate applies every migration
        const migrated = runCli(['migrate', '--json'], empty.url, { cwd });
        expectOk(migrated);
        expect(migrated.json().alreadyApplied).toBe(0);
      } finally {
        await empty.drop();
      }
    });

    it('refuses a database with pending migrations, naming them, and applies none', async () => {
      const old = await createTestDatabase(kind);
      try {
        const all = loadMigrations(kind).map((m) => m.name);
        await migrate({ url: old.url, kind }, { upTo: all[all.length - 2] });
        const r = runCli(['clients', 'list'], old.url, { cwd });
        expectOneLineFailure(r, 1, new RegExp(`lacks 1 migration\\(s\\) of this version \\(${all[all.length - 1]}\\): run \`gatehouse migrate\``));
        const migrated = runCli(['migrate', '--json'], old.url, { cwd });
        expect(migrated.json()).toEqual({ database: kind, applied: [all[all.length - 1]], alreadyApplied: all.length - 1 });
        expectOk(runCli(['clients', 'list'], old.url, { cwd }));
      } finally {
        await old.drop();
      }
    });

    if (kind === 'sqlite') {
      it('with the default relative DATABASE_URL in another folder, names the file it looked for and creates no data folder', () => {
        const elsewhere = mkdtempSync(join(tmpdir(), 'gatehouse-elsewhere-'));
        try {
          const r = runCli(['clients', 'list'], '', { cwd: elsewhere });
          expectOneLineFailure(r, 1, /no database at \S+\/data\/gatehouse\.db \(DATABASE_URL file:\.\/data\/gatehouse\.db is relative to the current folder\): run `gatehouse migrate`/);
          expect(r.stderr).toContain(join(elsewhere, 'data', 'gatehouse.db'));
          expect(existsSync(join(elsewhere, 'data'))).toBe(false);
          // migrate creates it there
          expectOk(runCli(['migrate'], '', { cwd: elsewhere }));
          expect(existsSync(join(elsewhere, 'data', 'gatehouse.db'))).toBe(true);
          expect(runCli(['clients', 'list', '--json'], '', { cwd: elsewhere }).json()).toEqual([]);
        } finally {
          rmSync(elsewhere, { recursive: true, force: true });
        }
      });

      it('the server still creates and migrates its SQLite file on first start', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'gatehouse-first-start-'));
        const url = `file:${join(dir, 'new', 'gatehouse.db')}`;
        const server = await startServer({ DATABASE_URL: url });
        try {
          expect(existsSync(join(dir, 'new', 'gatehouse.db'))).toBe(true);
          expectOk(runCli(['resources', 'list'], url, { cwd }));
        } finally {
          await server.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      }, 60_000);
    }
  });

  describe('resources', () => {
    it('updates an API: given options change, the others keep their values, list options replace the list', async () => {
      const id = 'https://updated.example.com';
      expectOk(cli('resources', 'create', '--identifier', id, '--name', 'Before', '--scope', 'a:read', '--scope', 'a:write', '--ttl', '900', '--introspector', 'probe'));
      const stampBefore = await readChangeStamp(db());
      const r = cli('resources', 'update', id, '--ttl', '1200', '--scope', 'a:read', '--scope', 'a:admin', '--format', 'opaque', '--allow-registered-clients', '--json');
      expectOk(r);
      expect(r.json()).toMatchObject({ identifier: id, name: 'Before', scopes: ['a:read', 'a:admin'], accessTokenTtl: 1200, tokenFormat: 'opaque', introspectors: ['probe'], allowRegisteredClients: true });
      expect(await findApi(db(), id)).toMatchObject({ name: 'Before', scopes: ['a:read', 'a:admin'], accessTokenTtl: 1200, tokenFormat: 'opaque', allowRegisteredClients: true });
      expect(await readChangeStamp(db())).not.toEqual(stampBefore);

      const cleared = cli('resources', 'update', id, '--introspector', '', '--no-allow-registered-clients', '--name', 'After');
      expectOk(cleared);
      expect(cleared.stdout).toMatch(/^identifier +https:\/\/updated\.example\.com\nname +After\n/);
      expect(await findApi(db(), id)).toMatchObject({ name: 'After', introspectors: [], allowRegisteredClients: false, accessTokenTtl: 1200 });

      const trail = cli('audit', 'list', '--action', 'api.updated', '--target', id, '--json');
      expectOk(trail);
      expect(trail.json().map((e: { actorType: string; details: { changed: string[] } }) => [e.actorType, e.details.changed])).toEqual([
        ['cli', ['name', 'introspectors', 'allowRegisteredClients']],
        ['cli', ['scopes', 'accessTokenTtl', 'tokenFormat', 'allowRegisteredClients']],
      ]);
    });

    it('refuses an update under the rules of create, or one dropping a scope a client uses, and changes nothing', async () => {
      const id = 'https://kept.example.com';
      expectOk(cli('resources', 'create', '--identifier', id, '--scope', 'k:read', '--scope', 'k:write'));
      expectOk(cli('clients', 'create', '--id', 'keeper', '--name', 'Keeper', '--resource', id, '--scope', 'k:read'));
      const before = await snapshot();
      for (const [args, code, message] of [
        [['--scope', 'k:write'], 1, /cannot drop scope\(s\): k:read still used by client keeper/],
        [['--ttl', '59'], 1, /--ttl: .*>=60/],
        [['--ttl', 'soon'], 2, /--ttl must be a whole number/],
        [['--format', 'paper'], 1, /--format: /],
        [[], 2, /nothing to update/],
        [['--allow-registered-clients', '--no-allow-registered-clients'], 2, /exclude each other/],
      ] as [string[], 1 | 2, RegExp][]) {
        expectOneLineFailure(cli('resources', 'update', id, ...args), code, message);
      }
      expectOneLineFailure(cli('resources', 'update', 'https://ghost.example.com', '--name', 'Ghost'), 1, /no API with identifier https:\/\/ghost\.example\.com/);
      expectOneLineFailure(cli('resources', 'update', '--name', 'Nobody'), 2, /expected exactly one API identifier/);
      expect(await snapshot()).toBe(before);
      // dropping a scope nobody uses is fine
      expectOk(cli('resources', 'update', id, '--scope', 'k:read'));
      expect((await findApi(db(), id))!.scopes).toEqual(['k:read']);
    });

    it('creates, lists, shows and deletes an API, with --json output field by field', async () => {
      const created = cli(
        'resources', 'create', '--identifier', 'https://inventory.example.com', '--name', 'Inventory',
        '--scope', 'stock:read', '--scope', 'stock:write', '--ttl', '3600', '--format', 'opaque', '--alg', 'RS256', '--json',
      );
      expectOk(created);
      const api = created.json();
      expect(Object.keys(api).sort()).toEqual(
        ['accessTokenTtl', 'allowRegisteredClients', 'createdAt', 'identifier', 'introspectors', 'name', 'scopes', 'signingAlg', 'tokenFormat', 'updatedAt'],
      );
      expect(api).toMatchObject({
        identifier: 'https://inventory.example.com',
        name: 'Inventory',
        scopes: ['stock:read', 'stock:write'],
        accessTokenTtl: 3600,
        tokenFormat: 'opaque',
        signingAlg: 'RS256',
        allowRegisteredClients: false,
      });
      expect(Date.parse(api.createdAt)).not.toBeNaN();

      // defaults: name = identifier, no scopes, 600 s, jwt, ES256
      const plain = cli('resources', 'create', '--identifier', 'https://plain.example.com', '--json');
      expectOk(plain);
      expect(plain.json()).toMatchObject({
        identifier: 'https://plain.example.com', name: 'https://plain.example.com', scopes: [],
        accessTokenTtl: 600, tokenFormat: 'jwt', signingAlg: 'ES256',
      });

      const stored = await findApi(db(), 'https://inventory.example.com');
      expect(stored).toMatchObject({ name: 'Inventory', scopes: ['stock:read', 'stock:write'], accessTokenTtl: 3600, tokenFormat: 'opaque', signingAlg: 'RS256' });

      const list = cli('resources', 'list', '--json');
      expectOk(list);
      const listed = list.json() as { identifier: string }[];
      expect(listed.map((a) => a.identifier)).toEqual(expect.arrayContaining(['https://inventory.example.com', 'https://plain.example.com']));
      expect(listed.find((a) => a.identifier === 'https://inventory.example.com')).toEqual(api);
      // sorted by identifier
      expect(listed.map((a) => a.identifier)).toEqual([...listed.map((a) => a.identifier)].sort());

      const show = cli('resources', 'show', 'https://inventory.example.com', '--json');
      expectOk(show);
      expect(show.json()).toEqual(api);

      const human = cli('resources', 'show', 'https://inventory.example.com');
      expectOk(human);
      expect(human.stdout).toMatch(/^identifier\s+https:\/\/inventory\.example\.com$/m);
      expect(human.stdout).toMatch(/^name\s+Inventory$/m);
      expect(human.stdout).toMatch(/^scopes\s+stock:read, stock:write$/m);
      expect(human.stdout).toMatch(/^ttl_seconds\s+3600$/m);
      expect(human.stdout).toMatch(/^format\s+opaque$/m);
      expect(human.stdout).toMatch(/^alg\s+-$/m); // opaque tokens are not signed

      const humanList = cli('resources', 'list');
      expectOk(humanList);
      expect(humanList.stdout).toContain('https://inventory.example.com  Inventory  [stock:read stock:write]  opaque');

      const deleted = cli('resources', 'delete', 'https://plain.example.com', '--json');
      expectOk(deleted);
      expect(deleted.json()).toEqual({ deleted: 'https://plain.example.com' });
      expect(await findApi(db(), 'https://plain.example.com')).toBeNull();

      const humanDelete = cli('resources', 'delete', 'https://inventory.example.com');
      expectOk(humanDelete);
      expect(humanDelete.stdout).toBe('deleted API https://inventory.example.com\n');
      expect(await findApi(db(), 'https://inventory.example.com')).toBeNull();
    });
  });

  describe('clients', () => {
    beforeAll(() => {
      expectOk(cli('resources', 'create', '--identifier', 'https://payments.example.com', '--scope', 'pay:read', '--scope', 'pay:write', '--scope', 'pay:refund'));
      expectOk(cli('resources', 'create', '--identifier', 'https://reports.example.com', '--scope', 'reports:read'));
    });

    it('creates a confidential client whose secret is returned once and stored only as an argon2id hash', async () => {
      const r = cli(
        'clients', 'create', '--id', 'payments-worker', '--name', 'Payments worker',
        '--resource', 'https://payments.example.com', '--scope', 'pay:read', '--scope', 'pay:write', '--json',
      );
      expectOk(r);
      const created = r.json();
      expect(created.clientSecret).toMatch(SECRET);
      expect(created).not.toHaveProperty('secretHash');
      expect(created).toMatchObject({
        clientId: 'payments-worker',
        name: 'Payments worker',
        tokenEndpointAuthMethod: 'client_secret_basic',
        grantTypes: ['client_credentials'],
        redirectUris: [],
        resources: ['https://payments.example.com'],
        scopes: ['pay:read', 'pay:write'],
        firstParty: false,
        hasSecret: true,
      });

      const row = await findClient(db(), 'payments-worker');
      expect(row!.secretHash).toMatch(ARGON2ID);
      expect(row!.secretHash).not.toContain(created.clientSecret);
      expect(await verifySecret(row!.secretHash!, created.clientSecret)).toBe(true);

      const show = cli('clients', 'show', 'payments-worker', '--json');
      expectOk(show);
      const shown = show.json();
      expect(shown.hasSecret).toBe(true);
      expect(shown).not.toHaveProperty('secretHash');
      expect(shown).not.toHaveProperty('clientSecret');
      expect(show.stdout).not.toContain(created.clientSecret);
      expect(show.stdout).not.toContain(row!.secretHash!);
      const { clientSecret, ...withoutSecret } = created;
      expect(shown).toEqual(withoutSecret);

      const list = cli('clients', 'list', '--json');
      expectOk(list);
      expect(list.stdout).not.toContain(created.clientSecret);
      expect(list.stdout).not.toContain('$argon2');
      expect((list.json() as { clientId: string }[]).find((c) => c.clientId === 'payments-worker')).toEqual(withoutSecret);
    });

    it('prints the secret once, with a notice, in human output, and generates an id when none is given', async () => {
      const r = cli('clients', 'create', '--name', 'Nightly reports', '--resource', 'https://reports.example.com', '--auth-method', 'client_secret_post');
      expectOk(r);
      const id = r.stdout.match(/^client_id\s+(\S+)$/m)?.[1];
      // generated ids are hex, so they never start with "-" and read as a flag
      expect(id).toMatch(/^[0-9a-f]{24}$/);
      expect(r.stdout).toMatch(/^name\s+Nightly reports$/m);
      expect(r.stdout).toMatch(/^auth_method\s+client_secret_post$/m);
      expect(r.stdout).toMatch(/^has_secret\s+true$/m);
      const secret = r.stdout.match(/^client_secret\s+(\S+)$/m)?.[1];
      expect(secret).toMatch(SECRET);
      expect(r.stdout).toMatch(/shown once/);
      expect(r.stdout.split(secret!)).toHaveLength(2); // exactly once
      expect(await verifySecret((await findClient(db(), id!))!.secretHash!, secret!)).toBe(true);

      // `--`: a generated id may begin with "-" (base64url), which would read as a flag
      const show = cli('clients', 'show', '--', id!);
      expectOk(show);
      expect(show.stdout).toMatch(/^has_secret\s+true$/m);
      expect(show.stdout).not.toContain(secret!);
      expect(show.stdout).not.toMatch(/^client_secret\s|shown once/m);

      const list = cli('clients', 'list');
      expectOk(list);
      expect(list.stdout).toContain(`${id}  Nightly reports  [client_credentials]`);
    });

    it('creates a public client (auth method none) with no secret', async () => {
      const r = cli(
        'clients', 'create', '--id', 'cli-spa', '--name', 'CLI SPA', '--auth-method', 'none',
        '--grant-type', 'authorization_code', '--redirect-uri', 'http://localhost:3000/callback', '--json',
      );
      expectOk(r);
      const created = r.json();
      expect(created).not.toHaveProperty('clientSecret');
      expect(created).toMatchObject({
        clientId: 'cli-spa', tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'],
        redirectUris: ['http://localhost:3000/callback'], hasSecret: false, firstParty: false,
      });
      expect((await findClient(db(), 'cli-spa'))!.secretHash).toBeNull();

      // a public client has nothing to rotate
      const before = await snapshot();
      expectOneLineFailure(cli('clients', 'rotate-secret', 'cli-spa'), 1, /cli-spa authenticates with none and has no secret/);
      expect(await snapshot()).toBe(before);
    });

    it('updates a client: list options replace whole lists, --first-party/--third-party toggle consent', async () => {
      const created = cli(
        'clients', 'create', '--id', 'portal', '--name', 'Portal', '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
        '--redirect-uri', 'https://portal.example.com/a', '--redirect-uri', 'https://portal.example.com/b',
        '--resource', 'https://payments.example.com', '--scope', 'pay:read', '--scope', 'pay:write', '--json',
      );
      expectOk(created);
      const hashBefore = (await findClient(db(), 'portal'))!.secretHash;

      const r = cli(
        'clients', 'update', 'portal', '--name', 'Customer portal', '--redirect-uri', 'http://127.0.0.1:8080/cb',
        '--grant-type', 'authorization_code', '--scope', 'pay:refund', '--first-party',
        '--post-logout-redirect-uri', 'https://portal.example.com/bye', '--backchannel-logout-uri', 'https://portal.example.com/logout', '--json',
      );
      expectOk(r);
      const updated = r.json();
      expect(updated).toMatchObject({
        clientId: 'portal',
        name: 'Customer portal',
        grantTypes: ['authorization_code'],
        redirectUris: ['http://127.0.0.1:8080/cb'],
        resources: ['https://payments.example.com'], // not given: kept
        scopes: ['pay:refund'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        firstParty: true,
        postLogoutRedirectUris: ['https://portal.example.com/bye'],
        backchannelLogoutUri: 'https://portal.example.com/logout',
        hasSecret: true,
      });
      expect(updated).not.toHaveProperty('secretHash');
      expect(updated).not.toHaveProperty('clientSecret');
      expect(updated.createdAt).toBe(created.json().createdAt);
      const row = await findClient(db(), 'portal');
      expect(row).toMatchObject({ name: 'Customer portal', redirectUris: ['http://127.0.0.1:8080/cb'], scopes: ['pay:refund'], firstParty: true });
      expect(row!.secretHash).toBe(hashBefore); // an update never touches the secret

      // resources and scopes together; --third-party asks for consent again; human output
      const human = cli(
        'clients', 'update', 'portal', '--resource', 'https://reports.example.com', '--scope', 'reports:read',
        '--third-party', '--auth-method', 'client_secret_post', '--backchannel-logout-uri', '',
      );
      expectOk(human);
      expect(human.stdout).toMatch(/^resources\s+https:\/\/reports\.example\.com$/m);
      expect(human.stdout).toMatch(/^scopes\s+reports:read$/m);
      expect(human.stdout).toMatch(/^first_party\s+false$/m);
      expect(human.stdout).toMatch(/^auth_method\s+client_secret_post$/m);
      expect(human.stdout).toMatch(/^post_logout_redirect_uris\s+https:\/\/portal\.example\.com\/bye$/m);
      expect(human.stdout).toMatch(/^backchannel_logout_uri\s+-$/m); // '' clears it
      expect(human.stdout).not.toMatch(/^client_secret\s|\$argon2/m);
      expect(await findClient(db(), 'portal')).toMatchObject({
        resources: ['https://reports.example.com'], scopes: ['reports:read'], firstParty: false,
        tokenEndpointAuthMethod: 'client_secret_post', secretHash: hashBefore,
        postLogoutRedirectUris: ['https://portal.example.com/bye'], backchannelLogoutUri: null,
      });
    });

    it('rotates a secret: a new one is shown once, the old one stops matching', async () => {
      const created = cli('clients', 'create', '--id', 'rotating', '--name', 'Rotating', '--json');
      expectOk(created);
      const first = created.json().clientSecret as string;
      const firstHash = (await findClient(db(), 'rotating'))!.secretHash!;

      const r = cli('clients', 'rotate-secret', 'rotating', '--json');
      expectOk(r);
      const rotated = r.json();
      expect(Object.keys(rotated).sort()).toEqual(['clientId', 'clientSecret']);
      expect(rotated.clientId).toBe('rotating');
      expect(rotated.clientSecret).toMatch(SECRET);
      expect(rotated.clientSecret).not.toBe(first);
      const secondHash = (await findClient(db(), 'rotating'))!.secretHash!;
      expect(secondHash).toMatch(ARGON2ID);
      expect(secondHash).not.toBe(firstHash);
      expect(await verifySecret(secondHash, rotated.clientSecret)).toBe(true);
      expect(await verifySecret(secondHash, first)).toBe(false);

      const human = cli('clients', 'rotate-secret', 'rotating');
      expectOk(human);
      expect(human.stdout).toMatch(/^rotated the secret of rotating$/m);
      const third = human.stdout.match(/^client_secret\s+(\S+)$/m)?.[1];
      expect(third).toMatch(SECRET);
      expect(third).not.toBe(rotated.clientSecret);
      expect(human.stdout).toMatch(/shown once/);
      expect(await verifySecret((await findClient(db(), 'rotating'))!.secretHash!, third!)).toBe(true);
    });

    it('deletes a client', async () => {
      expectOk(cli('clients', 'create', '--id', 'doomed', '--name', 'Doomed'));
      const others = (await listClients(db())).map((c) => c.clientId).filter((id) => id !== 'doomed');

      const r = cli('clients', 'delete', 'doomed', '--json');
      expectOk(r);
      expect(r.json()).toEqual({ deleted: 'doomed' });
      expect(await findClient(db(), 'doomed')).toBeNull();
      expect((await listClients(db())).map((c) => c.clientId)).toEqual(others);
    });
  });

  describe('bad input: a clear one-line message, a non-zero exit, and no change', () => {
    beforeAll(() => {
      expectOk(cli('seed', fixture('seed-guarded.yaml')));
    });

    const create = ['clients', 'create', '--name', 'New'];
    const authCode = [...create, '--grant-type', 'authorization_code'];

    it.each<[string, string[], 1 | 2, RegExp]>([
      // usage errors: exit 2
      ['an unknown flag', [...create, '--colour', 'blue'], 2, /unknown option --colour/],
      ['a missing --name', ['clients', 'create', '--id', 'nameless'], 2, /--name is required/],
      ['a missing --identifier', ['resources', 'create', '--name', 'Nameless'], 2, /--identifier is required/],
      ['an unknown command', ['frobnicate'], 2, /unknown command: frobnicate/],
      ['an unknown clients command', ['clients', 'frobnicate'], 2, /unknown command: clients frobnicate/],
      ['a missing client id', ['clients', 'show'], 2, /expected exactly one client id/],
      ['a --ttl that is not a number', ['resources', 'create', '--identifier', 'https://t.example.com', '--ttl', '10m'], 2, /--ttl must be a whole number/],
      ['--first-party with --third-party', ['clients', 'update', 'guard', '--first-party', '--third-party'], 2, /exclude each other/],
      // failures: exit 1
      ['an http redirect URI on a non-loopback host', [...authCode, '--redirect-uri', 'http://app.example.com/cb'], 1,
        /--redirect-uri: must use https .*http:\/\/app\.example\.com\/cb/],
      ['a redirect URI with a fragment', [...authCode, '--redirect-uri', 'https://app.example.com/cb#top'], 1, /must not contain a fragment/],
      ['a redirect URI that is not a URL', [...authCode, '--redirect-uri', 'not a url'], 1, /not an absolute URL: not a url/],
      ['a duplicate client id', [...create, '--id', 'guard'], 1, /client guard already exists/],
      ['a duplicate API identifier', ['resources', 'create', '--identifier', 'https://guarded.example.com'], 1, /API https:\/\/guarded\.example\.com already exists/],
      ['an unknown API', [...create, '--resource', 'https://nowhere.example.com'], 1, /unknown API https:\/\/nowhere\.example\.com/],
      ['a scope of no API of the client', [...create, '--resource', 'https://guarded.example.com', '--scope', 'admin'], 1,
        /--scope: admin is not a scope of the client's APIs/],
      ['an update leaving scopes of another API', ['clients', 'update', 'guard', '--resource', 'https://unused.example.com'], 1,
        /guarded:read is not a scope of the client's APIs/],
      ['an update switching a public client to confidential', ['clients', 'update', 'guard-web', '--auth-method', 'client_secret_basic'], 1,
        /cannot switch between public/],
      ['deleting an API a client uses', ['resources', 'delete', 'https://guarded.example.com'], 1, /still used by client\(s\) guard/],
      ['show of an unknown client', ['clients', 'show', 'ghost'], 1, /no client with id ghost/],
      ['delete of an unknown client', ['clients', 'delete', 'ghost'], 1, /no client with id ghost/],
      ['rotate-secret of an unknown client', ['clients', 'rotate-secret', 'ghost'], 1, /no client with id ghost/],
      ['show of an unknown API', ['resources', 'show', 'https://ghost.example.com'], 1, /no API with identifier https:\/\/ghost\.example\.com/],
      ['a ttl below 60 s', ['resources', 'create', '--identifier', 'https://t.example.com', '--ttl', '59'], 1, /--ttl: .*>=60/],
      ['a ttl above a day', ['resources', 'create', '--identifier', 'https://t.example.com', '--ttl', '86401'], 1, /<=86400/],
      ['an identifier that is not a URI', ['resources', 'create', '--identifier', 'payments'], 1, /not an absolute URI: payments/],
      // names that every JavaScript object has are not commands
      ['constructor as a command', ['constructor'], 2, /unknown command: constructor/],
      ['toString as a command', ['toString'], 2, /unknown command: toString/],
      ['valueOf as a command', ['valueOf'], 2, /unknown command: valueOf/],
      ['an --expires-in beyond any date', ['registration-tokens', 'create', '--expires-in', '99999999999999999999'], 2, /--expires-in must be at most 315360000 seconds/],
    ])('rejects %s', async (_what, args, code, message) => {
      const before = await snapshot();
      const r = cli(...args, '--json'); // --json changes nothing for errors: they go to stderr
      expectOneLineFailure(r, code, message);
      expect(await snapshot()).toBe(before);
    });

    it('lets exactly one of twelve racing creates of one client id succeed; the others say it exists, in one line', async () => {
      const racers = await Promise.all(Array.from({ length: 12 }, () => runCliAsync(['clients', 'create', '--id', 'racer', '--name', 'Racer'], testDb.url, { cwd })));
      expect(racers.filter((r) => r.code === 0)).toHaveLength(1);
      for (const r of racers.filter((x) => x.code !== 0)) expectOneLineFailure(r, 1, /client racer already exists/);
    });

    it('refuses a seed whose text no database can store (NUL, lone surrogate), naming the field, and writes nothing', async () => {
      const before = await snapshot();
      const file = seedFile('seed-unstorable.json', JSON.stringify({ clients: [{ clientId: 'nul', name: 'a\u0000b' }, { clientId: 'lone', name: 'a\ud800b' }] }));
      const r = cli('seed', file);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}: clients[0].name: must not contain a NUL character or a lone UTF-16 surrogate`);
      expect(r.stderr).toContain(`${file}: clients[1].name: must not contain a NUL character or a lone UTF-16 surrogate`);
      expect(r.stderr).not.toMatch(/prisma|invocation/i);
      expect(await snapshot()).toBe(before);
    });

    it('revokes an initial access token by a literal prefix: _ and % are not wildcards', async () => {
      const token = cli('registration-tokens', 'create', '--json').json().token as string;
      const before = cli('registration-tokens', 'list', '--json').json();
      expectOneLineFailure(cli('registration-tokens', 'revoke', '______'), 1, /no initial access token starts with ______/);
      expectOneLineFailure(cli('registration-tokens', 'revoke', '%%%%%%'), 1, /no initial access token starts with %%%%%%/);
      expect(cli('registration-tokens', 'list', '--json').json()).toEqual(before);
      expectOk(cli('registration-tokens', 'revoke', '--', token.slice(0, 12)));
    });

    it.each([
      [['clients', 'create', '--name', 'Never']],
      [['migrate']],
    ])('rejects a bad DATABASE_URL with one message naming it (%j)', async (args) => {
      const before = await snapshot();
      const r = runCli(args, 'mysql://x', { cwd });
      expectOneLineFailure(r, 1, /^gatehouse: DATABASE_URL: must start with file: \(SQLite\) or postgres:\/\/ \(PostgreSQL\)\n$/);
      expect(await snapshot()).toBe(before);
    });
  });

  describe('seed', () => {
    const json = fixture('seed.json');
    const yaml = fixture('seed.yaml');

    it('applies a JSON file: creates, then is idempotent, then updates what changed', async () => {
      const first = cli('seed', json, '--json');
      expectOk(first);
      const report = first.json();
      expect(report.resources).toEqual([{ identifier: 'https://orders.example.com', action: 'created' }]);
      expect(report.clients).toEqual([
        { clientId: 'json-worker', action: 'created', clientSecret: expect.stringMatching(SECRET) },
        { clientId: 'json-backend', action: 'created' }, // secret supplied: not echoed
        { clientId: 'json-spa', action: 'created' }, // public: no secret
      ]);

      expect(await findApi(db(), 'https://orders.example.com')).toMatchObject({
        name: 'Orders API', scopes: ['orders:read', 'orders:write'], accessTokenTtl: 900, tokenFormat: 'opaque', signingAlg: 'ES256',
      });
      const worker = await findClient(db(), 'json-worker');
      expect(worker).toMatchObject({
        name: 'JSON worker', tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['client_credentials'],
        resources: ['https://orders.example.com'], scopes: ['orders:read'], redirectUris: [], firstParty: false,
      });
      expect(await verifySecret(worker!.secretHash!, report.clients[0].clientSecret)).toBe(true);

      const suppliedSecret = JSON.parse(readFileSync(json, 'utf8')).clients[1].secret as string;
      const backend = await findClient(db(), 'json-backend');
      expect(backend).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_post', scopes: [] });
      expect(backend!.secretHash).toMatch(ARGON2ID);
      expect(backend!.secretHash).not.toContain(suppliedSecret);
      expect(await verifySecret(backend!.secretHash!, suppliedSecret)).toBe(true);

      expect(await findClient(db(), 'json-spa')).toMatchObject({
        tokenEndpointAuthMethod: 'none', secretHash: null, firstParty: true,
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: ['http://localhost:5173/callback', 'https://spa.example.com/callback'],
      });
      const shown = cli('clients', 'show', 'json-backend', '--json');
      expectOk(shown);
      expect(shown.json().hasSecret).toBe(true);
      expect(shown.stdout).not.toContain(suppliedSecret);
      expect(shown.stdout).not.toContain('$argon2');

      // the identical file again: nothing changes, not even a timestamp or the change stamp
      const before = await snapshot();
      const second = cli('seed', json, '--json');
      expectOk(second);
      expect(second.json()).toEqual({
        resources: [{ identifier: 'https://orders.example.com', action: 'unchanged' }],
        clients: [
          { clientId: 'json-worker', action: 'unchanged' },
          { clientId: 'json-backend', action: 'unchanged' },
          { clientId: 'json-spa', action: 'unchanged' },
        ],
      });
      expect(await snapshot()).toBe(before);

      // a changed file: only what changed is updated; secret hashes stay
      const changed = JSON.parse(readFileSync(json, 'utf8'));
      changed.resources[0].accessTokenTtl = 1200;
      changed.clients[1].name = 'JSON backend v2';
      const third = cli('seed', seedFile('seed-changed.json', JSON.stringify(changed)), '--json');
      expectOk(third);
      expect(third.json()).toEqual({
        resources: [{ identifier: 'https://orders.example.com', action: 'updated' }],
        clients: [
          { clientId: 'json-worker', action: 'unchanged' },
          { clientId: 'json-backend', action: 'updated' },
          { clientId: 'json-spa', action: 'unchanged' },
        ],
      });
      expect((await findApi(db(), 'https://orders.example.com'))!.accessTokenTtl).toBe(1200);
      const backendAfter = await findClient(db(), 'json-backend');
      expect(backendAfter!.name).toBe('JSON backend v2');
      expect(backendAfter!.secretHash).toBe(backend!.secretHash);
      expect((await findClient(db(), 'json-worker'))!.secretHash).toBe(worker!.secretHash);
      expect(await readChangeStamp(db())).toBeGreaterThan(JSON.parse(before).stamp);
    });

    it('applies a YAML file, with human output, idempotently', async () => {
      const first = cli('seed', yaml);
      expectOk(first);
      expect(first.stdout).toMatch(/^API https:\/\/billing\.example\.com: created$/m);
      expect(first.stdout).toMatch(/^client yaml-worker: created$/m);
      expect(first.stdout).toMatch(/^client yaml-backend: created$/m);
      expect(first.stdout).toMatch(/^client yaml-web: created$/m);
      const generated = [...first.stdout.matchAll(/^ {2}client_secret (\S+) \(shown once\)$/gm)].map((m) => m[1]);
      expect(generated).toHaveLength(2); // yaml-worker and yaml-web; yaml-backend's secret was supplied
      for (const s of generated) expect(s).toMatch(SECRET);
      expect(first.stdout).not.toContain('yaml-backend-secret');

      expect(await findApi(db(), 'https://billing.example.com')).toMatchObject({
        name: 'Billing API', scopes: ['invoices:read', 'invoices:write'], accessTokenTtl: 1800, tokenFormat: 'jwt', signingAlg: 'RS256',
      });
      const backend = await findClient(db(), 'yaml-backend');
      expect(backend!.secretHash).toMatch(ARGON2ID);
      expect(await verifySecret(backend!.secretHash!, 'yaml-backend-secret-0123456789-abcdefghijklmnop')).toBe(true);
      const web = await findClient(db(), 'yaml-web');
      expect(web).toMatchObject({
        grantTypes: ['authorization_code', 'refresh_token'], redirectUris: ['https://web.example.com/callback'],
        firstParty: true, tokenEndpointAuthMethod: 'client_secret_basic',
      });
      // the secret printed right after "client yaml-web: created" is yaml-web's
      const webSecret = first.stdout.match(/^client yaml-web: created\n {2}client_secret (\S+)/m)?.[1];
      expect(await verifySecret(web!.secretHash!, webSecret!)).toBe(true);

      const before = await snapshot();
      const second = cli('seed', yaml);
      expectOk(second);
      expect(second.stdout).toBe(
        'API https://billing.example.com: unchanged\nclient yaml-worker: unchanged\nclient yaml-backend: unchanged\nclient yaml-web: unchanged\n',
      );
      expect(await snapshot()).toBe(before);

      const changed = readFileSync(yaml, 'utf8').replace('name: YAML worker', 'name: YAML worker v2');
      const third = cli('seed', seedFile('seed-changed.yaml', changed));
      expectOk(third);
      expect(third.stdout).toMatch(/^client yaml-worker: updated$/m);
      expect(third.stdout).toMatch(/^client yaml-web: unchanged$/m);
      expect(third.stdout).not.toContain('client_secret');
      expect((await findClient(db(), 'yaml-worker'))!.name).toBe('YAML worker v2');
    });

    it('keeps the secret of an existing client when the seed gives none', async () => {
      const created = cli('clients', 'create', '--id', 'pre-existing', '--name', 'Pre-existing', '--auth-method', 'client_secret_post', '--json');
      expectOk(created);
      const secret = created.json().clientSecret as string;
      const hash = (await findClient(db(), 'pre-existing'))!.secretHash!;

      const same = seedFile('seed-existing-same.yaml', [
        'clients:',
        '  - clientId: pre-existing',
        '    name: Pre-existing',
        '    tokenEndpointAuthMethod: client_secret_post',
      ].join('\n'));
      const unchanged = cli('seed', same, '--json');
      expectOk(unchanged);
      expect(unchanged.json().clients).toEqual([{ clientId: 'pre-existing', action: 'unchanged' }]);

      const renamed = seedFile('seed-existing-renamed.yaml', [
        'clients:',
        '  - clientId: pre-existing',
        '    name: Pre-existing, renamed',
        '    tokenEndpointAuthMethod: client_secret_post',
        '    firstParty: true',
      ].join('\n'));
      const updated = cli('seed', renamed, '--json');
      expectOk(updated);
      expect(updated.json().clients).toEqual([{ clientId: 'pre-existing', action: 'updated' }]); // no new secret shown
      const row = await findClient(db(), 'pre-existing');
      expect(row).toMatchObject({ name: 'Pre-existing, renamed', firstParty: true, tokenEndpointAuthMethod: 'client_secret_post' });
      expect(row!.secretHash).toBe(hash);
      expect(await verifySecret(row!.secretHash!, secret)).toBe(true);
    });

    it('replaces the secret of an existing client when the seed gives a different one', async () => {
      expectOk(cli('clients', 'create', '--id', 'reseeded', '--name', 'Reseeded'));
      const oldHash = (await findClient(db(), 'reseeded'))!.secretHash!;
      const secret = 'reseeded-secret-0123456789-abcdefghijklmnop';
      const file = seedFile('seed-reseeded.json', JSON.stringify({ clients: [{ clientId: 'reseeded', name: 'Reseeded', secret }] }));
      const r = cli('seed', file, '--json');
      expectOk(r);
      expect(r.json().clients).toEqual([{ clientId: 'reseeded', action: 'updated' }]);
      const hash = (await findClient(db(), 'reseeded'))!.secretHash!;
      expect(hash).not.toBe(oldHash);
      expect(await verifySecret(hash, secret)).toBe(true);
      // the same secret again is recognised, not re-hashed
      const again = cli('seed', file, '--json');
      expectOk(again);
      expect(again.json().clients).toEqual([{ clientId: 'reseeded', action: 'unchanged' }]);
      expect((await findClient(db(), 'reseeded'))!.secretHash).toBe(hash);
    });

    it('stores a supplied argon2id secretHash as is', async () => {
      const secret = 'hashed-elsewhere-0123456789-abcdefghijklmnop';
      // the reference argon2 CLI's parameter order: m, t, p
      const hash = (await hashSecret(secret)).replace(/\$m=(\d+),p=(\d+),t=(\d+)\$/, '$m=$1,t=$3,p=$2$');
      expect(hash).toMatch(/\$m=\d+,t=\d+,p=\d+\$/);
      const file = seedFile('seed-hash.json', JSON.stringify({ clients: [{ clientId: 'prehashed', name: 'Prehashed', secretHash: hash }] }));
      const r = cli('seed', file, '--json');
      expectOk(r);
      expect(r.json().clients).toEqual([{ clientId: 'prehashed', action: 'created' }]);
      const row = await findClient(db(), 'prehashed');
      expect(row!.secretHash).toBe(hash);
      expect(await verifySecret(row!.secretHash!, secret)).toBe(true);
    });

    // Regression: isArgon2idHash() once accepted only the order m=,t=,p=, while the argon2
    // package Gatehouse uses writes m=,p=,t=, so a hash copied from a Gatehouse database was refused.
    it('accepts a secretHash that Gatehouse itself made (copied from another client)', async () => {
      const created = cli('clients', 'create', '--id', 'hash-source', '--name', 'Hash source', '--json');
      expectOk(created);
      const secret = created.json().clientSecret as string;
      const hash = (await findClient(db(), 'hash-source'))!.secretHash!;
      const file = seedFile('seed-copied-hash.json', JSON.stringify({ clients: [{ clientId: 'hash-copy', name: 'Hash copy', secretHash: hash }] }));
      const r = cli('seed', file, '--json');
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const row = await findClient(db(), 'hash-copy');
      expect(row?.secretHash).toBe(hash);
      expect(await verifySecret(row!.secretHash!, secret)).toBe(true);
    });

    // Regression: applySeed() once compared records with a key-order-dependent JSON.stringify,
    // and the defaulted name comes last, so an API without a "name" was "updated" on every run.
    it('is idempotent for an API without a name', async () => {
      const file = fixture('seed-unnamed-resource.yaml');
      const first = cli('seed', file, '--json');
      expectOk(first);
      expect(first.json().resources).toEqual([{ identifier: 'https://unnamed.example.com', action: 'created' }]);
      expect((await findApi(db(), 'https://unnamed.example.com'))!.name).toBe('https://unnamed.example.com');

      const before = await snapshot();
      const second = cli('seed', file, '--json');
      expectOk(second);
      expect(second.json().resources).toEqual([{ identifier: 'https://unnamed.example.com', action: 'unchanged' }]);
      expect(await snapshot()).toBe(before);
    });

    // A seed that drops an API scope a stored client still uses would leave that client
    // naming a scope that no longer exists; like `resources delete`, it is refused.
    it('refuses to drop an API scope that a client in the database still uses', async () => {
      const setup = seedFile('seed-scopes-before.yaml', [
        'resources:',
        '  - identifier: https://shrinking.example.com',
        '    name: Shrinking API',
        '    scopes: [shrink:read, shrink:write]',
        'clients:',
        '  - clientId: shrink-writer',
        '    name: Shrink writer',
        '    resources: [https://shrinking.example.com]',
        '    scopes: [shrink:write]',
      ].join('\n'));
      expectOk(cli('seed', setup));
      const shrink = seedFile('seed-scopes-after.yaml', [
        'resources:',
        '  - identifier: https://shrinking.example.com',
        '    name: Shrinking API',
        '    scopes: [shrink:read]',
      ].join('\n'));
      const before = await snapshot();
      const r = cli('seed', shrink);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/shrink-writer/);
      expect((await findApi(db(), 'https://shrinking.example.com'))!.scopes).toEqual(['shrink:read', 'shrink:write']);
      expect(await snapshot()).toBe(before);
    });

    it('says "nothing to seed" for an empty file', async () => {
      const before = await snapshot();
      const r = cli('seed', seedFile('empty.yaml', '# nothing yet\n'));
      expectOk(r);
      expect(r.stdout).toBe('nothing to seed\n');
      expect(await snapshot()).toBe(before);
    });
  });

  describe('malformed seed files: every problem reported with its path, nothing written', () => {
    /** the "gatehouse: FILE: ..." headline and the per-problem lines, each "FILE: problem" */
    function seedFailure(r: CliResult, file: string): { headline: string; problems: string[] } {
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
      const [headline, ...rest] = r.stderr.trimEnd().split('\n');
      expect(headline).toMatch(new RegExp(`^gatehouse: ${escape(file)}: the seed file has ${rest.length} problem\\(s\\); nothing was written$`));
      for (const line of rest) expect(line.startsWith(`${file}: `)).toBe(true);
      return { headline, problems: rest.map((l) => l.slice(file.length + 2)) };
    }
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

    it('lists every schema and reference problem, and writes not even the valid entries', async () => {
      const file = fixture('seed-invalid.yaml');
      const before = await snapshot();
      const r = cli('seed', file, '--json');
      const { problems } = seedFailure(r, file);
      const expected: [string, RegExp][] = [
        ['(root)', /Unrecognized key: "version"/],
        ['resources[1]', /Unrecognized key: "ttl"/],
        ['resources[2].accessTokenTtl', /expected number, received string/],
        ['clients[1].redirectUris[0]', /must use https .*http:\/\/app\.example\.com\/callback/],
        ['clients[2].clientId', /duplicate of clients\[0\] \(valid-client\)/],
        ['clients[3].resources[0]', /unknown API https:\/\/nowhere\.example\.com/],
        ['clients[4].secret', /give secret or secretHash, not both/],
        ['clients[5].name', /expected string, received number/],
        ['clients[5].firstParty', /expected boolean, received string/],
        ['clients[6].scopes[0]', /admin is not a scope of the client's APIs/],
        ['clients[7].redirectUris[0]', /must not contain a fragment/],
      ];
      for (const [path, message] of expected) {
        const line = problems.find((p) => p.startsWith(`${path}: `));
        expect([path, line]).toEqual([path, expect.stringMatching(message)]);
      }
      expect(problems).toHaveLength(expected.length);
      // the valid API and client in the same file were not written either
      expect(await findApi(db(), 'https://valid-api.example.com')).toBeNull();
      expect(await findClient(db(), 'valid-client')).toBeNull();
      expect(await snapshot()).toBe(before);
    });

    it('refuses a file whose only problem is one bad entry among valid ones (no partial write)', async () => {
      const file = seedFile('seed-one-bad.json', JSON.stringify({
        resources: [{ identifier: 'https://partial.example.com', scopes: ['p:read'] }],
        clients: [
          { clientId: 'partial-ok', name: 'Partial OK', resources: ['https://partial.example.com'] },
          { clientId: 'partial-bad', name: 'Partial bad', grantTypes: ['authorization_code'], redirectUris: ['https://ok.example.com/cb', 'app/cb'] },
        ],
      }));
      const before = await snapshot();
      const { problems } = seedFailure(cli('seed', file), file);
      expect(problems).toEqual(['clients[1].redirectUris[1]: not an absolute URL: app/cb']);
      expect(await findApi(db(), 'https://partial.example.com')).toBeNull();
      expect(await findClient(db(), 'partial-ok')).toBeNull();
      expect(await snapshot()).toBe(before);
    });

    it('rejects a public client with a secret and a client naming an API that does not exist in the file or the database', async () => {
      const file = seedFile('seed-refs.yaml', [
        'clients:',
        '  - clientId: public-with-secret',
        '    name: Public with secret',
        '    tokenEndpointAuthMethod: none',
        '    grantTypes: [authorization_code]',
        '    redirectUris: ["http://[::1]:9000/cb"]',
        '    secret: public-secret-0123456789-abcdefghijklmnop',
        '  - clientId: dangling',
        '    name: Dangling',
        '    resources: [https://guarded-nowhere.example.com]',
        '    scopes: [x]',
      ].join('\n'));
      const before = await snapshot();
      const { problems } = seedFailure(cli('seed', file), file);
      expect(problems).toEqual(expect.arrayContaining([
        'clients[0].secret: a client that authenticates with none has no secret',
        'clients[1].resources[0]: unknown API https://guarded-nowhere.example.com',
        "clients[1].scopes[0]: x is not a scope of the client's APIs",
      ]));
      expect(problems).toHaveLength(3);
      expect(await snapshot()).toBe(before);
    });

    it.each([
      ['seed-syntax-error.yaml', 4],
      ['seed-syntax-error.json', 6],
    ])('refuses a syntax error in %s, naming its line, without writing', async (name, line) => {
      const file = fixture(name);
      const before = await snapshot();
      const { problems } = seedFailure(cli('seed', file), file);
      expect(problems.length).toBeGreaterThanOrEqual(1);
      expect(problems[0]).toMatch(/^line \S+: \S/);
      expect(await snapshot()).toBe(before);
            expect(problems[0]).toMatch(new RegExp(`^line ${line}: `));
    });

    it('refuses a duplicate key', async () => {
      const file = seedFile('seed-duplicate-key.yaml', 'resources:\n  - identifier: https://dupkey.example.com\n    name: A\n    name: B\n');
      const before = await snapshot();
      const { problems } = seedFailure(cli('seed', file), file);
      expect(problems).toEqual([expect.stringMatching(/Map keys must be unique/)]);
      expect(await snapshot()).toBe(before);
    });

    it('refuses a missing file with one line naming it', async () => {
      const before = await snapshot();
      const r = cli('seed', 'does-not-exist.yaml');
      expectOneLineFailure(r, 1, /^gatehouse: cannot read does-not-exist\.yaml: no such file\n$/);
      expect(await snapshot()).toBe(before);
    });

    it('refuses seed without a file as a usage error', () => {
      expectOneLineFailure(cli('seed'), 2, /^gatehouse: expected exactly one seed file\n$/);
    });
  });
});
