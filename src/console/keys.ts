import { KeyError, RETIRED_KEY_LIFETIME, describeSigningKeys, rotateSigningKeys } from '../services/keys.js';
import { consoleError, consolePage, doneRedirect, queryParam, when, type ConsoleArea } from './context.js';

/**
 * Signing keys, /console/keys: every key with its stage and dates, the
 * schedule explained, and rotation (behind a confirmation page) through the
 * same service as `gatehouse keys rotate` and /admin/v1/signing-keys/rotate.
 */

const ROTATED = 'Keys rotated: a new key is published, and the keys that were published take over signing on schedule.';

export const keysArea: ConsoleArea = (router, deps) => {
  const schedule = { leadSeconds: deps.keyPublishLeadSeconds, retiredHours: RETIRED_KEY_LIFETIME / 3600 };

  router.get('/console/keys', async (ctx) => {
    const keys = await describeSigningKeys(deps.db);
    consolePage(ctx, 'keys', 'keys', {
      notice: queryParam(ctx, 'done') === ROTATED ? ROTATED : undefined,
      schedule,
      keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, stage: k.stage, encrypted: k.encrypted, published: when(k.publishedAt), signsFrom: when(k.signsFrom), retired: when(k.retiredAt), until: when(k.until) })),
    });
  });
  router.get('/console/keys/rotate', (ctx) => consolePage(ctx, 'keys', 'keys-rotate', { schedule }));
  router.post('/console/keys/rotate', async (ctx) => {
    try {
      await rotateSigningKeys(deps.db, deps.keyEncryptionKey, { publishLeadSeconds: deps.keyPublishLeadSeconds });
    } catch (err) {
      // the stored keys cannot be opened with this server's KEY_ENCRYPTION_KEY: nothing was changed
      if (err instanceof KeyError) throw consoleError(409, 'The keys were not rotated', err.message, '/console/keys');
      throw err;
    }
    deps.cache.clear();
    doneRedirect(ctx, '/console/keys', ROTATED);
  });
};
