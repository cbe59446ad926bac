import Router from '@koa/router';
import { ping, type Db } from './storage/database.js';

/**
 * /healthz: the process answers. /readyz: and the database answers too. Its
 * body also says where rate limits are counted: a Redis outage does not make
 * the node unready (it counts per process meanwhile), but it shows here.
 */
/** Whether the database answers, as /readyz and the console's overview say it. */
export async function databaseHealth(db: Db): Promise<'ok' | 'unreachable'> {
  try {
    await ping(db);
    return 'ok';
  } catch {
    return 'unreachable';
  }
}

export function healthRoutes(db: Db, limits: () => object = () => ({})): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if ((await databaseHealth(db)) === 'ok') {
      ctx.body = { status: 'ok', database: 'ok', limits: limits() };
    } else {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', database: 'unreachable', limits: limits() };
    }
  });
  return router;
}
