import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context, Middleware } from 'koa';
import { brandingOf, imageOrigin } from './branding.js';
import { requestIdOf } from './request-id.js';

const viewsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'views');

/** Templates autoescape (`<%= %>`); `<%~ %>` is only for the layout's body. */
const eta = new Eta({ views: viewsDir, autoEscape: true, cache: true });
const resolveTemplate = eta.resolvePath!;
// a template names others from the views root (`console/layout`), as render() does; `./x` stays relative
eta.resolvePath = function (name, options) {
  return resolveTemplate.call(this, name.startsWith('.') ? name : `/${name}`, options);
};

/** No scripts, no third-party anything, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/**
 * The policy of one page: the strict one, with img-src naming exactly the
 * https origins of the logos this page shows (the operator's BRAND_LOGO_URL,
 * an app's registered logo_uri) and nothing else.
 */
export function contentSecurityPolicy(imageOrigins: readonly string[] = []): string {
  const extra = [...new Set(imageOrigins)];
  return extra.length ? CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", `img-src 'self' data: ${extra.join(' ')}`) : CONTENT_SECURITY_POLICY;
}

/**
 * oidc-provider's own pages (the form_post answer that carries a code, the
 * form that ends a session when someone else signs in, the device form): the
 * strict policy with a script-src it fills with the hash of its one inline
 * script (oidc-provider's helpers/script_src_sha.js), and no form-action, as
 * the form posts to the app's registered redirect URI.
 */
export const PROVIDER_PAGE_POLICY = CONTENT_SECURITY_POLICY.replace("default-src 'none';", "default-src 'none'; script-src;");

/**
 * The headers every page and every redirect of Gatehouse's own doors gets
 * beside its policy: never stored, never sniffed, no referrer.
 */
export function pageHeaders(ctx: Context, { replaceCacheControl = false } = {}): void {
  if (replaceCacheControl || !ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
}

/**
 * A redirect from one of Gatehouse's pages: no-store (it may carry a code or
 * end a form), 303 after a form POST so the browser GETs the next page.
 */
export function redirectTo(ctx: Context, url: string, status: 302 | 303 = 303): void {
  pageHeaders(ctx, { replaceCacheControl: true });
  ctx.status = status;
  ctx.redirect(url);
}

export interface RenderOptions {
  /** https URLs of images on the page beyond the brand logo (an app's logo) */
  images?: (string | undefined)[];
}

/**
 * Renders a page in the layout: every view also gets `brand` (name, logo,
 * stylesheet) and `requestId` (the error page shows it).
 */
export function render(ctx: Context, view: string, data: Record<string, unknown>, status = 200, options: RenderOptions = {}): void {
  const brand = brandingOf(ctx);
  const requestId = requestIdOf(ctx);
  const origins = [brand.logoUrl, ...(options.images ?? [])].map(imageOrigin).filter((o): o is string => !!o);
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', contentSecurityPolicy(origins));
  pageHeaders(ctx, { replaceCacheControl: true });
  ctx.body = eta.render(view, { ...data, brand, requestId });
}

/** The stylesheets, read once (no CDN: the pages work offline). */
const ASSETS = new Map(['style.css', 'console.css'].map((name) => [`/assets/${name}`, readFileSync(join(viewsDir, name))]));

/** Serves the stylesheets from memory. */
export const serveAssets: Middleware = async (ctx, next) => {
  const asset = ctx.method === 'GET' ? ASSETS.get(ctx.path) : undefined;
  if (asset) {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = asset;
    return;
  }
  await next();
};
