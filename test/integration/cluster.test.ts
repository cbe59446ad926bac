import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually, tokenRequest } from '../support/gatehouse.js';
import { openDatabase } from '../../src/storage/database.js';
import { listSigningKeys } from '../../src/services/keys.js';

/** The pids of a process's children. */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

/** Sends a token request's headers and the first bytes of its body; the rest waits for `finish()`. */
async function heldTokenRequest(port: number, client: { clientId: string; clientSecret: string }) {
  const body = 'grant_type=client_credentials';
  const auth = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64');
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let response = '';
  socket.on('data', (d) => (response += d));
  const ended = once(socket, 'close').then(() => response);
  socket.write(
    `POST /token HTTP/1.1\r\nHost: localhost:${port}\r\nAuthorization: Basic ${auth}\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`,
  );
  return { finish: () => socket.write(body.slice(5)), ended };
}

/** Pids that logged that they listen. */
const listeningPids = (server: RunningServer) =>
  new Set(server.output().split('\n').filter((l) => l.includes('gatehouse is listening')).map((l) => JSON.parse(l).pid as number));

/** Waits until the primary has two workers, none of them `gone`, and both listen. */
async function twoListeningWorkers(server: RunningServer, gone?: number): Promise<number[]> {
  let workers: number[] = [];
  await eventually(async () => {
    workers = childPids(server.process.pid!);
    const listening = listeningPids(server);
    return workers.length === 2 && !workers.includes(gone!) && workers.every((pid) => listening.has(pid));
  }, 'two listening workers');
  return workers;
}

describe('WORKERS=2: a primary and its workers', () => {
  let db: TestDatabase;
  let server: RunningServer;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    server = await startServer({ DATABASE_URL: db.url, WORKERS: '2' });
    createApi(db.url, ['--identifier', 'https://cluster.example.com']);
    client = createClient(db.url, ['--name', 'cluster', '--resource', 'https://cluster.example.com']);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('serves from two worker processes sharing one port', async () => {
    const workers = await twoListeningWorkers(server);
    expect(workers).not.toContain(server.process.pid);
    await eventually(
      async () => (await tokenRequest(server.url, { grant_type: 'client_credentials' }, [client.clientId, client.clientSecret])).status === 200,
      'the client to reach the workers',
    );
  });

  it('replaces a worker killed with SIGKILL, and says why in the log', async () => {
    const before = await twoListeningWorkers(server);
    process.kill(before[0], 'SIGKILL');
    const after = await twoListeningWorkers(server, before[0]);
    expect(after).toContain(before[1]);
    const died = server.output().split('\n').find((l) => l.includes('worker exited; starting another'));
    expect(JSON.parse(died!)).toMatchObject({ pid: before[0], signal: 'SIGKILL', level: 50 });
    // the port keeps answering throughout
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('drains every worker on SIGTERM: requests held open on both still get their tokens, then it exits 0', async () => {
    const workers = await twoListeningWorkers(server);
    // the primary hands connections to workers in turn: six land on both
    const held = await Promise.all([1, 2, 3, 4, 5, 6].map(() => heldTokenRequest(server.port, client)));
    await new Promise((r) => setTimeout(r, 300)); // the workers read the headers
    const stopped = server.stop();
    await eventually(async () => fetch(`${server.url}/healthz`).then(() => false, () => true), 'the port to stop accepting');
    for (const h of held) h.finish();
    for (const h of held) {
      const response = await h.ended;
      expect(response).toMatch(/^HTTP\/1\.1 200 /);
      expect(response).toContain('"access_token"');
    }
    expect(await stopped).toBe(0);
    const draining = server.output().split('\n').filter((l) => l.includes('draining in-flight requests')).map((l) => JSON.parse(l).pid);
    expect(new Set(draining)).toEqual(new Set(workers));
    expect(server.output()).toContain('draining every worker');
  });
});

describe.each(databaseKinds())('instances started at the same moment on an empty %s database', (kind) => {
  let db: TestDatabase;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await db?.drop();
  });

  it('end with exactly one set of signing keys, which all of them publish', async () => {
    const ports = await Promise.all([1, 2, 3].map(() => freePort()));
    servers.push(...(await Promise.all(ports.map((port) => startServer({ DATABASE_URL: db.url, PORT: String(port), WORKERS: '2' })))));
    const database = await openDatabase({ url: db.url, kind });
    try {
      const keys = await listSigningKeys(database.prisma);
      expect(keys.map((k) => `${k.alg}/${k.state}`).sort()).toEqual(['ES256/current', 'ES256/next', 'RS256/current', 'RS256/next']);
    } finally {
      await database.close();
    }
    const published = await Promise.all(servers.map(async (s) => ((await (await fetch(`${s.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort()));
    expect(published[1]).toEqual(published[0]);
    expect(published[2]).toEqual(published[0]);
    expect(published[0]).toHaveLength(4);
  });
});
