import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import { acquireLease, ensureLeaseRow, releaseLease } from '../storage/leases.js';

/**
 * Work that must happen once per deployment, not once per worker or instance
 * (the purge of expired rows, scheduled key rotation). Every node runs this
 * loop; only the holder of the "maintenance" lease does the tasks. The holder
 * renews the lease on every heartbeat; when it dies, the lease expires and the
 * next node to beat takes over.
 */

export interface MaintenanceTask {
  name: string;
  /** ms between runs */
  everyMs: number;
  run(): Promise<void>;
}

export interface MaintenanceOptions {
  holder: string;
  logger: Logger;
  tasks: MaintenanceTask[];
  now?: () => number;
  /** ms between lease renewals (default 10 s) */
  heartbeatMs?: number;
  /** ms a lease lasts without renewal: how long a dead holder blocks the others (default 30 s) */
  leaseMs?: number;
}

const LEASE = 'maintenance';

export class Maintenance {
  readonly #lastRun = new Map<string, number>();
  readonly #now: () => number;
  readonly #heartbeatMs: number;
  readonly #leaseMs: number;
  #timer: NodeJS.Timeout | undefined;
  #holding = false;
  #beating: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly options: MaintenanceOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#heartbeatMs = options.heartbeatMs ?? 10_000;
    this.#leaseMs = options.leaseMs ?? 30_000;
  }

  /** whether this node held the lease at its last heartbeat */
  /** resolves start() once the first heartbeat has settled the lease */
  #leaseSettled: (() => void) | undefined;

  get holding(): boolean {
    return this.#holding;
  }

  /**
   * Returns once the lease is settled (taken or not); the first tasks run on in
   * the background, so that a purge of a large backlog (a million expired rows
   * take about a minute) does not hold up the server's start.
   */
  async start(): Promise<void> {
    await ensureLeaseRow(this.db, LEASE);
    const settled = new Promise<void>((resolve) => (this.#leaseSettled = resolve));
    void this.beat();
    await settled;
    this.#timer = setInterval(() => void this.beat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beating;
    if (this.#holding) await releaseLease(this.db, LEASE, this.options.holder).catch((err: unknown) => this.options.logger.warn({ err }, 'could not release the maintenance lease'));
    this.#holding = false;
  }

  /** One heartbeat: renew or take the lease, then run the tasks that are due. Never throws. */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  async #beat(): Promise<void> {
    const { holder, logger, tasks } = this.options;
    const now = this.#now();
    try {
      const held = await acquireLease(this.db, LEASE, holder, new Date(now), new Date(now + this.#leaseMs));
      if (held !== this.#holding) logger.info({ holder }, held ? 'took the maintenance lease' : 'lost the maintenance lease');
      this.#holding = held;
    } catch (err) {
      logger.warn({ err }, 'could not renew the maintenance lease');
      this.#holding = false;
    }
    this.#leaseSettled?.();
    this.#leaseSettled = undefined;
    if (!this.#holding) return;
    for (const task of tasks) {
      if (now - (this.#lastRun.get(task.name) ?? -Infinity) < task.everyMs) continue;
      this.#lastRun.set(task.name, now);
      try {
        await task.run();
      } catch (err) {
        logger.warn({ err, task: task.name }, 'maintenance task failed');
      }
    }
  }
}
