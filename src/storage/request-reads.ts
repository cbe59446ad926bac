import type { AccountRecord } from './accounts.js';
import type { HotStatements, PayloadRow, PayloadWrite } from './hot-statements.js';

/**
 * Fewer round trips per request, with nothing shared between requests.
 *
 * Read-ahead: a lookup of artifacts by value (a token, a code) also reads, in
 * the same statement, the grant each names, the session a session-bound one is
 * bound to, and its account (`findPayloadsAhead`), because oidc-provider asks
 * for those next. They are kept for the rest of that request only, so what
 * another request or node revokes is seen by the next request, as before; a
 * write or delete in the request drops what it touches. Only those related rows
 * are answered from the scope: a lookup of anything else always reads the
 * database (the refresh grace polls for another request's row that way).
 *
 * Deferred writes: in a scope made with `deferWrites`, upserts are collected
 * (and found by lookups of the same request) and written by `flushWrites` in
 * one statement: a refresh rotation's new refresh token, access token and grace
 * answer are one INSERT. The caller flushes before the answer goes out, so no
 * token is answered that is not stored. Atomic statements (consume, insert if
 * absent) are never deferred; one on a deferred row writes the deferred rows
 * first. The write happens only while the code or refresh token the request
 * presented still exists (PresentedArtifactGoneError otherwise).
 *
 * Outside a request scope (the CLI, maintenance, Gatehouse's own pages, timers
 * after a request ended) every call goes straight to the statements.
 */

interface Scope {
  /** related rows read ahead: `${type}\0${key}` and `Session\0uid\0${uid}` -> row, or null when absent */
  rows: Map<string, PayloadRow | null>;
  accounts: Map<string, AccountRecord | null>;
  /** upserts waiting for flushWrites, by `${type}\0${key}` */
  pending: Map<string, PayloadWrite> | null;
  /**
   * the grant artifact the request presented (a code, a refresh token, …): its
   * deferred writes happen only while it still exists, so a revocation that
   * deletes it meanwhile is never undone by them
   */
  presented: { type: string; id: string } | null;
  /** the request has ended: its scope answers nothing more */
  closed: boolean;
}

/** The scope of each request in flight, by the request's own object (never shared between requests). */
const scopes = new WeakMap<object, Scope>();
/**
 * How storage tells which request it is working for: oidc-provider's request
 * context, which oidc-provider itself carries through every await
 * (`Provider.ctx`); set once by the app (oidc/request-scope.ts).
 */
let currentRequest: () => object | undefined = () => undefined;
export function findRequestWith(current: () => object | undefined): void {
  currentRequest = current;
}

const rowKey = (type: string, id: string) => `${type}\0${id}`;
const uidKey = (type: string, uid: string) => `${type}\0uid\0${uid}`;
const live = () => {
  const request = currentRequest();
  const scope = request && scopes.get(request);
  return scope && !scope.closed ? scope : undefined;
};

/**
 * Runs one request's work with its own scope, closed when `fn` settles. With
 * `deferWrites`, its upserts wait for `flushWrites`.
 */
export async function inRequestScope<T>(request: object, fn: () => Promise<T>, options: { deferWrites?: boolean } = {}): Promise<T> {
  const scope: Scope = { rows: new Map(), accounts: new Map(), pending: options.deferWrites ? new Map() : null, presented: null, closed: false };
  scopes.set(request, scope);
  try {
    return await fn();
  } finally {
    scope.closed = true;
    scopes.delete(request);
  }
}

/** The artifacts a grant request presents: what its writes depend on. */
const PRESENTED = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** The artifact a request presented was deleted (revoked) while it ran: what it issued was not written. */
export class PresentedArtifactGoneError extends Error {
  constructor() {
    super('the grant was revoked while this request was answered');
    this.name = 'PresentedArtifactGoneError';
  }
}

/** Writes what the scope deferred, in one statement, while what the request presented exists. */
async function writeDeferred(scope: Scope, hot: Pick<HotStatements, 'savePayloads'>): Promise<void> {
  const rows = scope.pending ? [...scope.pending.values()] : [];
  if (!rows.length) return;
  scope.pending = new Map();
  if (!(await hot.savePayloads(rows, scope.presented ?? undefined))) throw new PresentedArtifactGoneError();
}

/**
 * Writes what this request deferred, in one statement. Throws what the
 * database throws, and PresentedArtifactGoneError when the code or refresh
 * token the request presented was deleted meanwhile (nothing is written then).
 */
export async function flushWrites(request: object, hot: Pick<HotStatements, 'savePayloads'>): Promise<void> {
  const scope = scopes.get(request);
  if (!scope) return;
  await writeDeferred(scope, hot);
  scope.pending = null;
}

const asRow = (w: PayloadWrite): PayloadRow => ({ type: w.type, id: w.id, payload: w.payload, expiresAt: w.expiresAt, consumedAt: null });

/** `hot`, with the request scope's read-ahead and deferred writes. */
export function requestScoped(hot: HotStatements): HotStatements {
  /** What a write or delete of (type, id) makes stale in the scope. */
  const forget = (scope: Scope, type: string, id?: string) => {
    if (id !== undefined) scope.rows.delete(rowKey(type, id));
    else for (const k of scope.rows.keys()) if (k.startsWith(`${type}\0`)) scope.rows.delete(k);
    // a session's uid entry cannot be told from its key: drop them all
    if (type === 'Session') for (const k of scope.rows.keys()) if (k.startsWith('Session\0uid\0')) scope.rows.delete(k);
  };
  /** An atomic statement on a row this request has not written yet: what is deferred goes first. */
  const writeFirst = async (scope: Scope, type: string, id: string) => {
    if (scope.pending?.has(rowKey(type, id))) await writeDeferred(scope, hot);
  };
  return {
    ...hot,
    async findPayloads(types, ids) {
      const scope = live();
      if (!scope) return hot.findPayloads(types, ids);
      const keys = types.flatMap((t) => ids.map((id) => rowKey(t, id)));
      // a grant read ahead earlier in the request
      if (keys.every((k) => scope.rows.has(k))) return keys.map((k) => scope.rows.get(k)).filter((r) => r != null);
      const pending = scope.pending ? keys.map((k) => scope.pending!.get(k)).filter((w) => w !== undefined) : [];
      const ahead = await hot.findPayloadsAhead(types, ids);
      if (scope.pending && !scope.presented) {
        const presented = ahead.rows.find((r) => PRESENTED.has(r.type));
        if (presented) scope.presented = { type: presented.type, id: presented.id };
      }
      for (const g of ahead.asked.grantIds) scope.rows.set(rowKey('Grant', g), ahead.grants.find((r) => r.id === g) ?? null);
      for (const uid of ahead.asked.sessionUids) scope.rows.set(uidKey('Session', uid), ahead.sessions.find((r) => r.uid === uid) ?? null);
      for (const a of ahead.asked.accountIds) scope.accounts.set(a, ahead.accounts.find((r) => r.id === a) ?? null);
      // what this request wrote and has not flushed is newer than the database
      return [...ahead.rows.filter((r) => !pending.some((w) => w.type === r.type && w.id === r.id)), ...pending.map(asRow)];
    },
    async findPayloadBy(type, column, value) {
      const scope = live();
      const known = column === 'uid' ? scope?.rows.get(uidKey(type, value)) : undefined;
      return known !== undefined ? known : hot.findPayloadBy(type, column, value);
    },
    async savePayload(row) {
      const scope = live();
      if (scope) forget(scope, row.type, row.id);
      if (scope?.pending) scope.pending.set(rowKey(row.type, row.id), row);
      else await hot.savePayload(row);
    },
    async consumePayload(type, id, at) {
      const scope = live();
      if (scope) {
        forget(scope, type, id);
        await writeFirst(scope, type, id);
      }
      return hot.consumePayload(type, id, at);
    },
    async insertPayloadIfAbsent(row, now) {
      const scope = live();
      if (scope) {
        forget(scope, row.type, row.id);
        await writeFirst(scope, row.type, row.id);
      }
      return hot.insertPayloadIfAbsent(row, now);
    },
    async deletePayload(type, id) {
      const scope = live();
      if (scope) {
        forget(scope, type, id);
        scope.pending?.delete(rowKey(type, id));
      }
      await hot.deletePayload(type, id);
    },
    async deletePayloadsOfGrant(type, grantId) {
      const scope = live();
      if (scope) {
        forget(scope, type);
        for (const [k, w] of scope.pending ?? []) if (w.type === type && w.grantId === grantId) scope.pending!.delete(k);
      }
      await hot.deletePayloadsOfGrant(type, grantId);
    },
    async findAccount(id) {
      const known = live()?.accounts.get(id);
      return known !== undefined ? known : hot.findAccount(id);
    },
  };
}
