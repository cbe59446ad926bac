import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { Maintenance } from '../../src/services/maintenance.js';
import { createLogger } from '../../src/logger.js';
import { eventually } from '../support/gatehouse.js';

/**
 * Work that must happen once per deployment runs on the one node holding the
 * maintenance lease; another node takes over when the holder stops or dies.
 */
describe.each(databaseKinds())('maintenance under a lease on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;
  const logger = createLogger('silent');
  const running: Maintenance[] = [];

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop()));
  });
  afterAll(() => close?.());

  /** A node whose one task counts its runs. */
  function node(holder: string, timing: { heartbeatMs: number; leaseMs: number }) {
    const runs = { count: 0 };
    const m = new Maintenance(database.prisma, { holder, logger, ...timing, tasks: [{ name: 'count', everyMs: 0, run: async () => void runs.count++ }] });
    running.push(m);
    return { m, runs };
  }

  it('runs the tasks on exactly one of several nodes', async () => {
    const nodes = ['a', 'b', 'c'].map((h) => node(h, { heartbeatMs: 50, leaseMs: 1_000 }));
    await Promise.all(nodes.map((n) => n.m.start()));
    await new Promise((r) => setTimeout(r, 400));
    expect(nodes.filter((n) => n.m.holding)).toHaveLength(1);
    expect(nodes.filter((n) => n.runs.count > 0)).toHaveLength(1);
    expect(nodes.find((n) => n.m.holding)!.runs.count).toBeGreaterThan(2);
  });

  it('returns from start with the lease settled while a long first task runs on', async () => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const state = { started: false, finished: false };
    const m = new Maintenance(database.prisma, {
      holder: 'slow', logger, heartbeatMs: 60_000, leaseMs: 60_000,
      tasks: [{ name: 'backlog', everyMs: 0, run: async () => { state.started = true; await done; state.finished = true; } }],
    });
    running.push(m);
    await m.start();
    expect(m.holding).toBe(true);
    await eventually(async () => state.started, 'the first task to start', 2_000);
    expect(state.finished).toBe(false);
    finish();
    await eventually(async () => state.finished, 'the first task to finish', 2_000);
  });

  it('hands over at once when the holder stops', async () => {
    const first = node('first', { heartbeatMs: 50, leaseMs: 60_000 });
    await first.m.start();
    const second = node('second', { heartbeatMs: 50, leaseMs: 60_000 });
    await second.m.start();
    expect([first.m.holding, second.m.holding]).toEqual([true, false]);
    await first.m.stop();
    await eventually(async () => second.m.holding && second.runs.count > 0, 'the second node to take over', 2_000);
  });

  it('takes over from a holder that died (stopped renewing) once its lease expires', async () => {
    // beats once at start, then never again within the test: as good as dead
    const dead = node('dead', { heartbeatMs: 3_600_000, leaseMs: 500 });
    await dead.m.start();
    expect(dead.m.holding).toBe(true);
    const heir = node('heir', { heartbeatMs: 50, leaseMs: 500 });
    await heir.m.start();
    expect(heir.m.holding).toBe(false);
    await eventually(async () => heir.m.holding, 'the lease to expire and pass on', 3_000);
    expect(heir.runs.count).toBeGreaterThan(0);
    expect(dead.runs.count).toBe(1);
  });
});
