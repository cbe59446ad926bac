import type { Db } from '../storage/database.js';
import { activitySince } from '../storage/audit.js';

/**
 * What the console's overview shows of the last day, from the audit trail:
 * sign-ins and failures per hour, and failures by kind (the action, with the
 * upstream's failure kind or the limit that tripped).
 */

export interface HourOfActivity {
  /** the start of the hour */
  hour: Date;
  signIns: number;
  failures: number;
}

export interface Activity {
  hours: HourOfActivity[];
  failures: { kind: string; count: number }[];
  /** true when the day held more events than were counted */
  truncated: boolean;
}

const HOUR = 3_600_000;
/** at most this many events are read for one overview */
const LIMIT = 50_000;

/** The kind of a failure, as the overview groups them: e.g. `sign_in.failed (network)`. */
function kindOf(action: string, details: Record<string, unknown>): string {
  const detail = details.kind ?? details.limit ?? details.reason;
  return typeof detail === 'string' && detail.length <= 60 ? `${action} (${detail})` : action;
}

export async function lastDayActivity(db: Db, now = Date.now()): Promise<Activity> {
  const first = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
  const hours: HourOfActivity[] = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR), signIns: 0, failures: 0 }));
  const rows = await activitySince(db, new Date(first), LIMIT);
  const kinds = new Map<string, number>();
  for (const row of rows) {
    const slot = hours[Math.floor((row.at.getTime() - first) / HOUR)];
    if (!slot) continue;
    if (row.action === 'sign_in.succeeded') slot.signIns++;
    if (row.outcome === 'failure') {
      slot.failures++;
      const kind = kindOf(row.action, row.details);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
  }
  const failures = [...kinds].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind));
  return { hours, failures, truncated: rows.length === LIMIT };
}
