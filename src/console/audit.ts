import type { Context } from 'koa';
import { AUDIT_ACTIONS, AUDIT_TARGETS, listAudit, type AuditEvent, type AuditQuery } from '../services/audit.js';
import { ServiceError, formatProblem } from '../services/errors.js';
import { consolePage, queryParam, type ConsoleArea } from './context.js';

/**
 * The audit trail, /console/audit: events newest first, filtered by a GET
 * form (the same filters as `gatehouse audit list` and the management API,
 * through services/audit.ts listAudit), a page of older events at a time.
 * Actors and objects link to their pages and to their own events. Details are
 * text: whatever an event carries is shown, escaped, never as HTML.
 */

/** Events per page; a full page has an "older" link (the next page starts before its last id). */
const PAGE = 50;

/** The filters, by their names in the query (listAudit's own). */
const FILTERS = ['action', 'actor', 'targetType', 'target', 'outcome', 'since', 'until'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number] | 'before', string>>;

/** A time as the console shows it: ISO 8601, UTC, to the second. */
export const isoTime = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The audit page with these filters (those given only). */
export function auditHref(filters: Filters): string {
  const query = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => !!e[1])).toString();
  return query ? `/console/audit?${query}` : '/console/audit';
}

/** The console page of an actor (by its type), when it has one. */
function actorPage(type: string, id: string): string | undefined {
  if (type === 'account') return `/console/accounts/${encodeURIComponent(id)}`;
  if (type === 'admin-client' || type === 'client') return `/console/clients/${encodeURIComponent(id)}`;
  return undefined;
}

/** The console page of an object acted on (by its type), when it has one. */
function targetPage(type: string, id: string): string | undefined {
  const area = ({ client: 'clients', api: 'apis', account: 'accounts', webhook: 'webhooks' } as Record<string, string>)[type];
  return area ? `/console/${area}/${encodeURIComponent(id)}` : undefined;
}

/** A detail's value as text: strings as they are, anything else as JSON. */
const detailText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));

function eventView(e: AuditEvent) {
  return {
    id: e.id, at: isoTime(e.at), action: e.action, outcome: e.outcome, address: e.address,
    actor: {
      type: e.actorType, id: e.actorId,
      href: e.actorId ? actorPage(e.actorType, e.actorId) : undefined,
      events: e.actorId ? auditHref({ actor: e.actorId }) : undefined,
    },
    target: e.targetType && e.targetId
      ? { type: e.targetType, id: e.targetId, href: targetPage(e.targetType, e.targetId), events: auditHref({ targetType: e.targetType, target: e.targetId }) }
      : null,
    details: Object.entries(e.details).map(([name, value]) => ({ name, value: detailText(value) })),
  };
}

/** The filters of this request: each given once, trimmed; the rest left out. */
function filtersOf(ctx: Context): Filters {
  const given = [...FILTERS, 'before'].map((name) => [name, queryParam(ctx, name)?.trim()] as const);
  return Object.fromEntries(given.filter(([, v]) => v));
}

export const auditArea: ConsoleArea = (router, deps) => {
  router.get('/console/audit', async (ctx) => {
    const { before, ...filters } = filtersOf(ctx);
    let events: AuditEvent[] = [];
    let problems: string[] = [];
    try {
      events = await listAudit(deps.db, { ...(filters as AuditQuery), before, limit: PAGE });
    } catch (err) {
      if (!(err instanceof ServiceError) || err.code !== 'invalid') throw err;
      problems = err.problems.map((p) => formatProblem(p));
    }
    const last = events.length === PAGE ? events[events.length - 1] : undefined;
    consolePage(ctx, 'audit', 'audit', {
      filters, actions: AUDIT_ACTIONS, targets: AUDIT_TARGETS, problems,
      events: events.map(eventView),
      older: last ? auditHref({ ...filters, before: last.id }) : undefined,
      newest: before ? auditHref(filters) : undefined,
    }, problems.length ? 400 : 200);
  });
};
