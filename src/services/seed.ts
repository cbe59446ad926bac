import { z } from 'zod';
import { LineCounter, parseDocument } from 'yaml';
import type { Db } from '../storage/database.js';
import { transaction } from '../storage/database.js';
import { bumpChangeStamp } from '../storage/change-stamp.js';
import { sameJson } from '../common/same-json.js';
import { credentialsStamp } from './clients.js';
import { insertClients, listClients, upsertClient, type ClientData, type ClientRecord } from '../storage/clients.js';
import { listApis, upsertApi, type ApiData, type ApiRecord } from '../storage/apis.js';
import { deleteConsents } from '../storage/consents.js';
import { apiInput, checkClient, clientFields, clientId, clientReferenceProblems, formatIssues } from './validation.js';
import { formatProblem } from './errors.js';
import { apiData } from './apis.js';
import { changeProblems, usesSecret, withdrawsConsents } from './clients.js';
import { recordAuditMany } from './audit.js';
import { generateSecret, hashSecret, isArgon2idHash, verifySecret } from './client-secrets.js';

/**
 * `gatehouse seed <file>`: a JSON or YAML file of APIs ("resources", as in RFC
 * 8707) and clients, applied idempotently in one transaction. The whole file is
 * validated first, under the same rules as every other door; any problem is
 * reported with its path and nothing is written.
 */

const seedClient = clientFields
  .extend({
    clientId,
    /** plaintext, hashed on import; at least 32 characters */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** an argon2id hash made elsewhere */
    secretHash: z.string().refine(isArgon2idHash, 'must be an argon2id hash ($argon2id$v=19$...)').optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    checkClient(c, ctx);
    if (c.secret && c.secretHash) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give secret or secretHash, not both' });
    if (!usesSecret(c) && (c.secret || c.secretHash)) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: `a client that authenticates with ${c.tokenEndpointAuthMethod} has no secret` });
    }
  });

const seedSchema = z
  .object({
    resources: z.array(apiInput.strict()).default([]),
    clients: z.array(seedClient).default([]),
  })
  .strict();

export type SeedFile = z.infer<typeof seedSchema>;

export class SeedError extends Error {
  constructor(readonly problems: string[]) {
    super(`the seed file has ${problems.length} problem(s); nothing was written`);
    this.name = 'SeedError';
  }
}

export type Action = 'created' | 'updated' | 'unchanged';

export interface SeedReport {
  resources: { identifier: string; action: Action }[];
  clients: { clientId: string; action: Action; clientSecret?: string }[];
}

/** Parses JSON or YAML text; syntax errors come back with their line. */
export function parseSeedText(text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length) {
    throw new SeedError(doc.errors.map((e) => `line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`));
  }
  return doc.toJS();
}

function duplicates(values: string[], path: string, key: string): string[] {
  const seen = new Map<string, number>();
  const problems: string[] = [];
  values.forEach((v, i) => {
    if (seen.has(v)) problems.push(`${path}[${i}].${key}: duplicate of ${path}[${seen.get(v)}] (${v})`);
    else seen.set(v, i);
  });
  return problems;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const records = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? v.map((x) => (x && typeof x === 'object' ? (x as Record<string, unknown>) : {})) : [];

/**
 * Checks that ids are unique and that every API and scope a client names exists,
 * in the file or the database. Runs on the raw input so that these problems are
 * reported together with schema problems.
 */
function referenceProblems(input: unknown, existingApis: ApiRecord[], existingClients: ClientRecord[]): string[] {
  const root = input && typeof input === 'object' ? (input as Record<string, unknown>) : {};
  const resources = records(root.resources);
  const clients = records(root.clients);
  const problems = [
    ...duplicates(resources.map((r) => String(r.identifier)), 'resources', 'identifier'),
    ...duplicates(clients.map((c) => String(c.clientId)), 'clients', 'clientId'),
  ];
  const apis = new Map<string, string[]>(existingApis.map((a) => [a.identifier, a.scopes]));
  for (const r of resources) if (typeof r.identifier === 'string') apis.set(r.identifier, strings(r.scopes));
  clients.forEach((c, i) => {
    for (const p of clientReferenceProblems({ resources: strings(c.resources), scopes: strings(c.scopes) }, apis)) {
      problems.push(formatProblem(p, ['clients', i]));
    }
    const existing = existingClients.find((e) => e.clientId === c.clientId) ?? null;
    const method = c.tokenEndpointAuthMethod ?? 'client_secret_basic';
    if (typeof method === 'string') {
      for (const p of changeProblems(existing, { tokenEndpointAuthMethod: method as ClientRecord['tokenEndpointAuthMethod'] })) {
        problems.push(formatProblem(p, ['clients', i]));
      }
    }
  });
  // Clients already stored and not in the file must keep every API scope they use.
  const inFile = new Set(clients.map((c) => c.clientId));
  resources.forEach((r, i) => {
    if (typeof r.identifier !== 'string') return;
    const kept = new Set(strings(r.scopes));
    for (const client of existingClients) {
      if (inFile.has(client.clientId) || !client.resources.includes(r.identifier)) continue;
      const others = new Set(client.resources.filter((x) => x !== r.identifier).flatMap((x) => apis.get(x) ?? []));
      const dropped = client.scopes.filter((s) => !kept.has(s) && !others.has(s));
      if (dropped.length) problems.push(`resources[${i}].scopes: drops ${dropped.join(', ')}, still used by client ${client.clientId}`);
    }
  });
  return problems;
}

/** Validates the whole file against the schema and the database; throws every problem at once. */
export function validateSeed(input: unknown, existingApis: ApiRecord[], existingClients: ClientRecord[]): SeedFile {
  const parsed = seedSchema.safeParse(input ?? {});
  const problems = [...(parsed.success ? [] : formatIssues(parsed.error)), ...referenceProblems(input, existingApis, existingClients)];
  if (!parsed.success || problems.length) throw new SeedError(problems);
  return parsed.data;
}

const same = sameJson;

function clientComparable(c: object) {
  const { secretHash, createdAt, updatedAt, credentialsChangedAt, dynamic, metadata, ...fields } = c as ClientData & Partial<ClientRecord>;
  return fields;
}

/** How far a long seed is: `done` of `total` in a stage (hashing secrets, writing). */
export type SeedProgress = (stage: 'hashing' | 'writing', done: number, total: number) => void;

/** argon2 runs at once while hashing (libuv's thread pool has 4 threads) */
const HASHING_CONCURRENCY = 4;
/** rows per multi-row insert */
const INSERT_BATCH = 500;

/** Maps `items` through `fn`, `limit` at a time, in order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>, progress?: (done: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
      progress?.(++done);
    }
  }));
  return out;
}

/** Validates, then writes everything in one transaction. */
export async function applySeed(db: Db, input: unknown, progress?: SeedProgress): Promise<SeedReport> {
  const existingApis = await listApis(db);
  const existingClients = await listClients(db);
  const seed = validateSeed(input, existingApis, existingClients);
  const apisById = new Map(existingApis.map((a) => [a.identifier, a]));
  const clientsById = new Map<string, ClientRecord>(existingClients.map((c) => [c.clientId, c]));

  const report: SeedReport = { resources: [], clients: [] };
  const apiWrites: ApiData[] = [];
  for (const r of seed.resources) {
    const data = apiData(r);
    const existing = apisById.get(r.identifier);
    const { createdAt, updatedAt, ...current } = existing ?? ({} as ApiRecord);
    const action: Action = !existing ? 'created' : same(current, data) ? 'unchanged' : 'updated';
    report.resources.push({ identifier: r.identifier, action });
    if (action !== 'unchanged') apiWrites.push(data);
  }

  // Hashing is slow: done before the transaction (a few at a time) so it stays short.
  const secrets = await mapLimited(seed.clients, HASHING_CONCURRENCY, async (c) => {
    const { secret, secretHash: givenHash, tokenEndpointAuthMethod } = c;
    const existing = clientsById.get(c.clientId);
    if (!usesSecret({ tokenEndpointAuthMethod })) return { secretHash: null };
    if (givenHash) return { secretHash: givenHash };
    if (secret) {
      const kept = existing?.secretHash && (await verifySecret(existing.secretHash, secret));
      return { secretHash: kept ? existing.secretHash : await hashSecret(secret) };
    }
    if (existing?.secretHash) return { secretHash: existing.secretHash };
    const shownSecret = generateSecret();
    return { secretHash: await hashSecret(shownSecret), shownSecret };
  }, (done) => progress?.('hashing', done, seed.clients.length));
  const clientWrites: ClientData[] = [];
  for (const [i, c] of seed.clients.entries()) {
    const { secret, secretHash: givenHash, ...fields } = c;
    const existing = clientsById.get(c.clientId);
    const { secretHash, shownSecret } = secrets[i] as { secretHash: string | null; shownSecret?: string };
    const data: ClientData = { ...fields, secretHash, ...credentialsStamp(existing, { ...fields, secretHash }) };
    const action: Action = !existing
      ? 'created'
      : same(clientComparable(existing), clientComparable(data)) && existing.secretHash === secretHash
        ? 'unchanged'
        : 'updated';
    report.clients.push({ clientId: c.clientId, action, ...(shownSecret ? { clientSecret: shownSecret } : {}) });
    if (action !== 'unchanged') clientWrites.push(data);
  }

  if (apiWrites.length || clientWrites.length) {
    const created = clientWrites.filter((c) => !clientsById.has(c.clientId));
    const changed = clientWrites.filter((c) => clientsById.has(c.clientId));
    const total = apiWrites.length + clientWrites.length;
    let written = 0;
    const wrote = (n: number) => progress?.('writing', (written += n), total);
    // new clients go in batches; a large seed must not outlive the transaction's time limit
    await transaction(db, async (tx) => {
      for (const api of apiWrites) await upsertApi(tx, api);
      wrote(apiWrites.length);
      for (let i = 0; i < created.length; i += INSERT_BATCH) {
        const batch = created.slice(i, i + INSERT_BATCH);
        await insertClients(tx, batch);
        wrote(batch.length);
      }
      for (const c of changed) {
        await upsertClient(tx, c);
        // the same rule as every door: no longer first-party, so people are asked again
        if (withdrawsConsents(clientsById.get(c.clientId) ?? null, c)) await deleteConsents(tx, { clientId: c.clientId });
        wrote(1);
      }
      await bumpChangeStamp(tx);
      const via = { via: 'seed' };
      await recordAuditMany(tx, [
        ...report.resources.filter((r) => r.action === 'created').map((r) => ({ action: 'api.created' as const, target: { type: 'api' as const, id: r.identifier }, details: via })),
        ...report.resources.filter((r) => r.action === 'updated').map((r) => ({ action: 'api.updated' as const, target: { type: 'api' as const, id: r.identifier }, details: via })),
        ...created.map((c) => ({ action: 'client.created' as const, target: { type: 'client' as const, id: c.clientId }, details: via })),
        ...changed.map((c) => ({ action: 'client.updated' as const, target: { type: 'client' as const, id: c.clientId }, details: via })),
      ]);
    }, { timeoutMs: 15_000 + 20 * total });
  }
  return report;
}
