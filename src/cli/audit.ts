import type { AuditEvent } from '../services/audit.js';
import { withDatabase } from './context.js';
import type { Command } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/audit.js');

function line(e: AuditEvent): string {
  const who = e.actorType + (e.actorId ? `:${e.actorId}` : '') + (e.address ? `@${e.address}` : '');
  const what = e.targetType ? `${e.targetType}:${e.targetId}` : '-';
  const details = Object.keys(e.details).length ? `  ${JSON.stringify(e.details)}` : '';
  return `${e.at.toISOString()}  ${e.action}  ${e.outcome}  ${who}  ${what}${details}`;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'the audit trail: admin changes and security events',
  intro: `Every admin change (CLI, seed, registration) and every security event (sign-ins,
consents, refresh-token reuse, rate limits) is recorded: who, what, on which object, when,
and the outcome; never a secret or token. AUDIT_RETENTION_DAYS sets how long rows are kept.`,
  fieldFlags: { action: '--action', actor: '--actor', targetType: '--target-type', target: '--target', outcome: '--outcome', since: '--since', until: '--until', limit: '--limit' },
  subcommands: [
    {
      usage: 'list',
      summary: 'list events, newest first',
      flags: {
        action: { type: 'string', arg: '<action>', help: 'e.g. client.created, sign_in.failed, consent.withdrawn' },
        actor: { type: 'string', arg: '<id>', help: 'the admin client or account that acted' },
        'target-type': { type: 'string', arg: '<type>', help: 'client | api | account | consent | signing_key | registration_token | webhook | grant' },
        target: { type: 'string', arg: '<id>', help: 'the object acted on' },
        outcome: { type: 'string', arg: '<outcome>', help: 'success | failure' },
        since: { type: 'string', arg: '<time>', help: 'ISO 8601, e.g. 2026-11-26T00:00:00Z' },
        until: { type: 'string', arg: '<time>', help: 'ISO 8601 (exclusive)' },
        before: { type: 'string', arg: '<event-id>', help: 'the page after this event (ids are in --json output)' },
        limit: { type: 'string', arg: '<n>', help: 'at most this many, 1 to 1000 (default 100)' },
      },
      async run({ values, out }) {
        const { listAudit } = await service();
        const limit = values.limit === undefined ? undefined : /^\d+$/.test(String(values.limit)) ? Number(values.limit) : Number.NaN;
        await withDatabase(async ({ prisma: db }) => {
          const events = await listAudit(db, {
            action: values.action as string | undefined, actor: values.actor as string | undefined,
            targetType: values['target-type'] as string | undefined, target: values.target as string | undefined,
            outcome: values.outcome as string | undefined, since: values.since as string | undefined,
            until: values.until as string | undefined, before: values.before as string | undefined, limit,
          });
          out.print(events, () => events.map(line).join('\n') || 'no matching events');
        });
      },
    },
  ],
};
