import Provider from 'oidc-provider';
import type { HotStatements } from '../storage/hot-statements.js';
import { findRequestWith, flushWrites, inRequestScope, PresentedArtifactGoneError } from '../storage/request-reads.js';

type Middleware = Parameters<Provider['use']>[0];

/**
 * Every oidc-provider request gets its own read-ahead scope
 * (storage/request-reads.ts): the grant, session and account oidc-provider
 * asks for after a token or code are read with it, in one statement. Storage
 * finds the request through oidc-provider's own `Provider.ctx`, so this adds
 * no AsyncLocalStorage of its own. At the token endpoint the artifacts a
 * request issues are written together, in one statement, after oidc-provider
 * has built the answer and before the answer goes out: a failed write becomes
 * the outage's 503 (this sits inside DatabaseOutage's middleware), never
 * tokens that were not stored. The write happens only while the code or
 * refresh token the request presented still exists: a revocation that deleted
 * it meanwhile is not undone, and the request gets invalid_grant.
 */
export function requestScope(hot: Pick<HotStatements, 'savePayloads'>, tokenPath: string): Middleware {
  findRequestWith(() => Provider.ctx);
  return (ctx, next) => {
    const token = ctx.method === 'POST' && ctx.path === tokenPath;
    return inRequestScope(ctx, async () => {
      await next();
      if (!token) return;
      try {
        await flushWrites(ctx, hot);
      } catch (err) {
        if (!(err instanceof PresentedArtifactGoneError)) throw err;
        // revoked while this request ran: the answer is the one a moment later would have got
        ctx.status = 400;
        ctx.body = { error: 'invalid_grant', error_description: err.message };
      }
    }, { deferWrites: token });
  };
}
