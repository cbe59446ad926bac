import { lastDayActivity } from '../services/activity.js';
import { describeSigningKeys } from '../services/keys.js';
import { consolePage, when, type ConsoleArea } from './context.js';
import { barChart } from './charts.js';

/**
 * The overview, /console: sign-ins and tokens per hour over the last day,
 * failures by kind, the health of the database and Redis, and the signing
 * keys' schedule. Charts are drawn by the server as SVG (charts.ts).
 */
export const overviewArea: ConsoleArea = (router, deps) => {
  router.get('/console', async (ctx) => {
    const [activity, tokens, health, keys] = await Promise.all([
      lastDayActivity(deps.db),
      deps.tokenHistory(),
      deps.health(),
      describeSigningKeys(deps.db),
    ]);
    consolePage(ctx, 'overview', 'overview', {
      signIns: barChart('Sign-ins per hour', activity.hours.map((h) => ({ at: h.hour, value: h.signIns }))),
      failuresPerHour: barChart('Failures per hour', activity.hours.map((h) => ({ at: h.hour, value: h.failures }))),
      tokens: barChart('Tokens issued per hour on this node', tokens.map((h) => ({ at: h.hour, value: h.count }))),
      failures: activity.failures,
      truncated: activity.truncated,
      health,
      keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, stage: k.stage, until: when(k.until) })),
    });
  });
};
