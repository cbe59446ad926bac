import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { KeySet } from '../services/keys.js';

/** setTimeout's longest delay, in ms */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * oidc-provider takes its signing keys when it is built. To change keys
 * without a restart, this holds the current Provider and builds a new one when
 * the key set changes: after an admin change (the change stamp moved) or at a
 * scheduled activation. Requests already in the old one finish there; all
 * state lives in the database, so nothing is lost between the two.
 */
export class LiveProvider {
  #provider: Provider;
  #handle: (req: IncomingMessage, res: ServerResponse) => void;
  #kids: string;
  #since: KeySet['since'];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly build: (jwks: JWK[]) => Provider,
    private readonly load: () => Promise<KeySet>,
    private readonly logger: Logger,
    private readonly now: () => number,
    initial: KeySet,
  ) {
    this.#provider = build(initial.jwks);
    this.#handle = this.#provider.callback();
    this.#kids = kidsOf(initial.jwks);
    this.#since = initial.since;
    this.#schedule(initial.nextChangeAt);
  }

  get provider(): Provider {
    return this.#provider;
  }

  /** each algorithm's signing key and since when it signs (ms since the epoch) */
  get signingSince(): KeySet['since'] {
    return this.#since;
  }

  /** The request handler: always the current provider's. */
  callback(): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => this.#handle(req, res);
  }

  /** Reads the key set; builds a new provider when it changed. Never throws. */
  async reload(): Promise<void> {
    let set: KeySet;
    try {
      set = await this.load();
    } catch (err) {
      this.logger.warn({ err }, 'could not read the signing keys; keeping the current ones');
      return;
    }
    if (this.#stopped) return;
    this.#schedule(set.nextChangeAt);
    this.#since = set.since;
    const kids = kidsOf(set.jwks);
    if (kids === this.#kids) return;
    this.#provider = this.build(set.jwks);
    this.#handle = this.#provider.callback();
    this.#kids = kids;
    this.logger.info({ signing: set.signing, published: set.jwks.length }, 'signing keys changed');
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(at: number | null): void {
    clearTimeout(this.#timer);
    if (at === null || this.#stopped) return;
    // a little after the activation, so the key set read then has it
    this.#timer = setTimeout(() => void this.reload(), Math.min(Math.max(0, at - this.now()) + 50, MAX_DELAY));
    this.#timer.unref();
  }
}

/** The key set's identity: kids in signing order. */
const kidsOf = (jwks: JWK[]) => jwks.map((k) => k.kid).join(',');
