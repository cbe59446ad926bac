import type Sqlite from 'better-sqlite3';
import type pg from 'pg';
import type { AccountClaims, AccountRecord, IdentityData } from './accounts.js';
import type { AuditRow } from './audit.js';
import type { NewDelivery } from './webhooks.js';
import { assertStorable } from './text.js';

/**
 * The hot statements of a sign-in (part of HotStatements, hot-statements.ts):
 * a returning identity's account, and the audit events with their webhook
 * outbox rows. A returning person's sign-in then needs no Prisma query and no
 * interactive transaction (a first sign-in, which creates or links, still
 * takes the Prisma path in services/accounts.ts). Rows as Prisma writes them:
 * a test writes with one and reads with the other.
 */
export interface AccountStatements {
  /**
   * A returning identity: records what the upstream says now about it and its
   * account's claims, unless the account is disabled (then nothing changes).
   * Null for an identity never seen; `account` null when its account is disabled.
   */
  updateReturningIdentity(identity: IdentityData, claims: AccountClaims, at: Date): Promise<{ accountId: string; account: AccountRecord | null } | null>;
  /** the webhooks that are not disabled: their ids and event types */
  enabledWebhooks(): Promise<{ id: string; events: string[] }[]>;
  /** audit events and the outbox rows that carry them, together: all or none */
  recordEvents(events: AuditRow[], deliveries: NewDelivery[]): Promise<void>;
}

type SqliteAccount = Omit<AccountRecord, 'emailVerified'> & { emailVerified: number };
const fromSqliteAccount = (row: SqliteAccount): AccountRecord => ({ ...row, emailVerified: row.emailVerified === 1 });

/**
 * SQLite: one synchronous transaction each (no await inside, so no other
 * request's statement runs in between; `transaction` retries while another
 * connection holds the lock).
 */
export function sqliteAccountStatements(
  statement: (sql: string) => Sqlite.Statement,
  transaction: <T>(fn: () => T) => Promise<T>,
  time: (d: Date | null) => string | null,
): AccountStatements {
  return {
    updateReturningIdentity(i, claims, at) {
      assertStorable([i, claims]);
      return transaction(() => {
        const found = statement('SELECT accountId FROM FederatedIdentity WHERE provider = ? AND subject = ?').get(i.provider, i.subject) as { accountId: string } | undefined;
        if (!found) return null;
        const account = statement(`UPDATE Account SET name = ?, username = ?, picture = ?, email = ?, emailVerified = ?, updatedAt = ? WHERE id = ? AND disabledAt IS NULL
          RETURNING id, email, emailVerified, name, username, picture`)
          .get(claims.name, claims.username, claims.picture, claims.email, claims.emailVerified ? 1 : 0, time(at), found.accountId) as SqliteAccount | undefined;
        if (account) {
          statement('UPDATE FederatedIdentity SET email = ?, emailVerified = ?, profile = ?, updatedAt = ? WHERE provider = ? AND subject = ?')
            .run(i.email, i.emailVerified ? 1 : 0, JSON.stringify(i.profile), time(at), i.provider, i.subject);
        }
        return { accountId: found.accountId, account: account ? fromSqliteAccount(account) : null };
      });
    },
    async enabledWebhooks() {
      const rows = await transaction(() => statement('SELECT id, events FROM Webhook WHERE disabled = 0').all() as { id: string; events: string }[]);
      return rows.map((r) => ({ id: r.id, events: JSON.parse(r.events) as string[] }));
    },
    recordEvents(events, deliveries) {
      assertStorable([events, deliveries]);
      return transaction(() => {
        const event = statement(`INSERT INTO AuditEvent (id, at, actorType, actorId, address, action, targetType, targetId, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
        for (const e of events) event.run(e.id, time(e.at), e.actorType, e.actorId, e.address, e.action, e.targetType, e.targetId, e.outcome, JSON.stringify(e.details));
        const delivery = statement('INSERT INTO WebhookDelivery (id, webhookId, eventId, eventType, payload, attempts, nextAttemptAt, createdAt) VALUES (?, ?, ?, ?, ?, 0, ?, ?)');
        for (const d of deliveries) delivery.run(d.id, d.webhookId, d.eventId, d.eventType, JSON.stringify(d.payload), time(d.nextAttemptAt), time(d.nextAttemptAt));
      });
    },
  };
}

/** PostgreSQL: one statement each (data-modifying CTEs); times as UTC text, as hot-statements.ts writes them. */
export function postgresAccountStatements(
  query: <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>,
  time: (d: Date | null) => string | null,
): AccountStatements {
  return {
    async updateReturningIdentity(i, claims, at) {
      assertStorable([i, claims]);
      const { rows } = await query<AccountRecord & { accountId: string }>('returning-identity', `WITH i AS (SELECT "accountId" FROM "FederatedIdentity" WHERE provider = $1 AND subject = $2),
        a AS (UPDATE "Account" SET name = $3, username = $4, picture = $5, email = $6, "emailVerified" = $7, "updatedAt" = $8::timestamp
          WHERE id = (SELECT "accountId" FROM i) AND "disabledAt" IS NULL RETURNING id, email, "emailVerified", name, username, picture),
        u AS (UPDATE "FederatedIdentity" SET email = $9, "emailVerified" = $10, profile = $11::jsonb, "updatedAt" = $8::timestamp
          WHERE provider = $1 AND subject = $2 AND EXISTS (SELECT 1 FROM a))
        SELECT i."accountId", a.id, a.email, a."emailVerified", a.name, a.username, a.picture FROM i LEFT JOIN a ON true`,
      [i.provider, i.subject, claims.name, claims.username, claims.picture, claims.email, claims.emailVerified, time(at), i.email, i.emailVerified, JSON.stringify(i.profile)]);
      const row = rows[0];
      if (!row) return null;
      const { accountId, ...account } = row;
      return { accountId, account: account.id === null ? null : account };
    },
    async enabledWebhooks() {
      const { rows } = await query<{ id: string; events: string[] }>('enabled-webhooks', 'SELECT id, events FROM "Webhook" WHERE disabled = false', []);
      return rows;
    },
    async recordEvents(events, deliveries) {
      assertStorable([events, deliveries]);
      const column = <T, K extends keyof T>(rows: T[], k: K) => rows.map((r) => r[k]);
      await query('record-events', `WITH e AS (INSERT INTO "AuditEvent" (id, at, "actorType", "actorId", address, action, "targetType", "targetId", outcome, details)
          SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[]))
        INSERT INTO "WebhookDelivery" (id, "webhookId", "eventId", "eventType", payload, attempts, "nextAttemptAt", "createdAt")
          SELECT d.id, d.webhook, d.event, d.type, d.payload, 0, d.next, d.next FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::timestamp[]) AS d(id, webhook, event, type, payload, next)`,
      [column(events, 'id'), events.map((e) => time(e.at)), column(events, 'actorType'), column(events, 'actorId'), column(events, 'address'), column(events, 'action'),
        column(events, 'targetType'), column(events, 'targetId'), column(events, 'outcome'), events.map((e) => JSON.stringify(e.details)),
        column(deliveries, 'id'), column(deliveries, 'webhookId'), column(deliveries, 'eventId'), column(deliveries, 'eventType'),
        deliveries.map((d) => JSON.stringify(d.payload)), deliveries.map((d) => time(d.nextAttemptAt))]);
    },
  };
}
