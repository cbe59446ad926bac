import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCliAsync } from '../support/processes.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { fuzzSeed, hostileText } from './generators.js';

/**
 * Generated argument lists and seed files for the real CLI. Every run exits
 * 0, 1 or 2; a failure says why on stderr in one line (a seed adds one line
 * per problem, each naming the file), prints nothing on stdout, and changes
 * nothing in the database.
 */

/** CLI runs per database and kind (arguments, seed files): each one is a process. */
const CLI_RUNS = Number(process.env.FUZZ_CLI_RUNS ?? 25);

const COMMANDS = [
  ['clients', 'create'], ['clients', 'update'], ['clients', 'show'], ['clients', 'delete'], ['clients', 'rotate-secret'], ['clients', 'list'],
  ['resources', 'create'], ['apis', 'show'], ['resources', 'delete'], ['consents', 'list'], ['consents', 'revoke'], ['grants', 'revoke'],
  ['keys', 'list'], ['registration-tokens', 'revoke'], ['registration-tokens', 'create'], ['seed'], ['migrate'], ['frobnicate'], ['clients'], [],
];
const FLAGS = [
  '--name', '--id', '--grant-type', '--redirect-uri', '--auth-method', '--resource', '--scope', '--first-party', '--third-party', '--require-par',
  '--identifier', '--ttl', '--format', '--alg', '--introspector', '--account', '--client', '--expires-in', '--single-use', '--json', '--help', '--colour', '-x', '--',
];

/** Process arguments cannot hold NUL; everything else goes. */
const arg = () => hostileText().map((t) => t.toWellFormed().replaceAll('\u0000', ''));
const argv = fc.tuple(fc.constantFrom(...COMMANDS), fc.array(fc.oneof(fc.constantFrom(...FLAGS), arg()), { maxLength: 8 })).map(([cmd, rest]) => [...cmd, ...rest]);

const seedDocument = fc.oneof(
  fc.record({
    resources: fc.array(fc.record({ identifier: fc.oneof(arg(), fc.constant('https://fuzz.example.com')), name: hostileText(), scopes: fc.array(hostileText(), { maxLength: 3 }), accessTokenTtl: fc.oneof(fc.integer(), fc.constant(600)) }, { requiredKeys: ['identifier'] }), { maxLength: 3 }),
    clients: fc.array(fc.record({
      clientId: fc.oneof(hostileText(), fc.constant('fuzz-client')), name: hostileText(), secret: hostileText(), grantTypes: fc.array(hostileText(), { maxLength: 2 }),
      redirectUris: fc.array(hostileText(), { maxLength: 2 }), tokenEndpointAuthMethod: fc.constantFrom('none', 'client_secret_basic', 'bogus'), resources: fc.array(hostileText(), { maxLength: 2 }), firstParty: fc.jsonValue(),
    }, { requiredKeys: ['clientId'] }), { maxLength: 3 }),
  }, { requiredKeys: [] }).chain((doc) => fc.constantFrom(JSON.stringify(doc), stringify(doc))),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  hostileText(),
  fc.constantFrom('resources:\n  - identifier: a\n    name: A\n    name: B\n', '{"clients": [', 'clients: *x', '\ufeff{}', '%YAML 9.9\n---\n'),
);

describe.each(databaseKinds())('generated CLI runs on %s', (kind) => {
  let testDb: TestDatabase;
  let database: Database;
  let cwd: string;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-cli-fuzz-'));
    database = await openDatabase({ url: testDb.url, kind });
    // a database with something in it (only migrate creates one)
    expect((await runCliAsync(['migrate'], testDb.url, { cwd })).code).toBe(0);
    expect((await runCliAsync(['resources', 'create', '--identifier', 'https://fuzz.example.com', '--scope', 'read'], testDb.url, { cwd })).code).toBe(0);
    expect((await runCliAsync(['clients', 'create', '--id', 'fuzz-client', '--name', 'Fuzz', '--resource', 'https://fuzz.example.com'], testDb.url, { cwd })).code).toBe(0);
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
    rmSync(cwd, { recursive: true, force: true });
  });

  const snapshot = async () => JSON.stringify({
    clients: await database.prisma.client.findMany({ orderBy: { clientId: 'asc' } }),
    apis: await database.prisma.resourceServer.findMany({ orderBy: { identifier: 'asc' } }),
    stamp: await database.prisma.changeStamp.findMany(),
    payloads: await database.prisma.oidcPayload.count(),
  });

  /** The checks every run must pass. */
  async function check(args: string[], seedFile?: string) {
    const before = await snapshot();
    const r = await runCliAsync(args, testDb.url, { cwd });
    const said = `gatehouse ${JSON.stringify(args)} exited ${r.code}:\n${r.stderr.slice(0, 500)}`;
    if (![0, 1, 2].includes(r.code!)) throw new Error(said);
    if (/\n\s+at \S+:\d+:\d+/.test(r.stderr) || /prisma|invocation/i.test(r.stderr)) throw new Error(`stack or Prisma text: ${said}`);
    if (r.code === 0) return;
    const lines = r.stderr.split('\n').filter((l) => !/^oidc-provider WARNING/.test(l) && l !== '');
    if (!lines[0]?.startsWith('gatehouse: ')) throw new Error(`no one-line reason: ${said}`);
    const extra = lines.slice(1).filter((l) => !(seedFile && l.startsWith(`${seedFile}: `)));
    if (extra.length) throw new Error(`more than one line: ${said}`);
    if (r.stdout !== '') throw new Error(`a failure printed on stdout: ${said}\n${r.stdout.slice(0, 200)}`);
    if ((await snapshot()) !== before) throw new Error(`a rejected run changed the database: ${said}`);
  }

  it(`runs ${CLI_RUNS} generated argument lists`, async () => {
    await fc.assert(fc.asyncProperty(argv, (args) => check(args)), { numRuns: CLI_RUNS, seed: fuzzSeed(), endOnFailure: true });
  });

  it(`applies ${CLI_RUNS} generated seed files, all or nothing`, async () => {
    let n = 0;
    await fc.assert(fc.asyncProperty(seedDocument, async (text) => {
      const file = join(cwd, `seed-${n++}.txt`);
      writeFileSync(file, text);
      await check(['seed', file], file);
    }), { numRuns: CLI_RUNS, seed: fuzzSeed(), endOnFailure: true });
  });
});
