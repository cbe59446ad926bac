import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context, Middleware } from 'koa';

const viewsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'views');

/** Templates autoescape (`<%= %>`); `<%~ %>` is only for the layout's body. */
const eta = new Eta({ views: viewsDir, autoEscape: true, cache: true });

/** No scripts, no third-party anything, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

export function render(ctx: Context, view: string, data: Record<string, unknown>, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.body = eta.render(view, data);
}

const stylesheet = readFileSync(join(viewsDir, 'style.css'));

/** Serves the one stylesheet, from memory (no CDN: the pages work offline). */
export const serveAssets: Middleware = async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/assets/style.css') {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = stylesheet;
    return;
  }
  await next();
};
