import type { Logger } from 'pino';
import type { Db } from '../storage/database.js';
import { readChangeStamp } from '../storage/change-stamp.js';
import { findClient, type ClientRecord } from '../storage/clients.js';
import { findApi, type ApiRecord } from '../storage/apis.js';

const MAX_ENTRIES = 10_000;

/**
 * In-process cache of the read-mostly admin data (clients and APIs) that every
 * token request reads. It polls the change stamp that admin writes bump, and
 * drops everything when it moves, so changes from any door reach every running
 * instance within one poll interval, with no restart. Lookups of unknown ids
 * are cached too (as null) so they cost one query per interval, not one per request.
 */
export class AdminDataCache {
  readonly #clients = new Map<string, ClientRecord | null>();
  readonly #apis = new Map<string, ApiRecord | null>();
  #version = -1;
  /** bumped on every clear, so a lookup that raced a clear does not store stale data */
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #listeners: (() => Promise<void>)[] = [];

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    /** ms */
    private readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    this.#version = await readChangeStamp(this.db);
    this.#timer = setInterval(() => void this.refresh(), this.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Checks the change stamp once; clears the cache when it moved. */
  async refresh(): Promise<void> {
    try {
      const version = await readChangeStamp(this.db);
      if (version !== this.#version) {
        this.#version = version;
        this.clear();
        await Promise.all(this.#listeners.map((listener) => listener()));
      }
    } catch (err) {
      this.logger.warn({ err }, 'could not read the change stamp');
    }
  }

  /** Calls `listener` whenever the change stamp moves (any admin change, key rotations included). */
  onChange(listener: () => Promise<void>): void {
    this.#listeners.push(listener);
  }

  /** changes whenever the cache is dropped: things derived from cached rows compare it */
  get generation(): number {
    return this.#generation;
  }

  clear(): void {
    this.#generation += 1;
    this.#clients.clear();
    this.#apis.clear();
  }

  client(clientId: string): Promise<ClientRecord | null> {
    return this.#cached(this.#clients, clientId, () => findClient(this.db, clientId));
  }

  api(identifier: string): Promise<ApiRecord | null> {
    return this.#cached(this.#apis, identifier, () => findApi(this.db, identifier));
  }

  async #cached<T>(map: Map<string, T | null>, key: string, load: () => Promise<T | null>): Promise<T | null> {
    const hit = map.get(key);
    if (hit !== undefined) return hit;
    const generation = this.#generation;
    const value = await load();
    if (generation === this.#generation) {
      if (map.size >= MAX_ENTRIES) map.clear();
      map.set(key, value);
    }
    return value;
  }
}
