import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Config } from '../config.js';

/**
 * The operator's branding (BRAND_NAME, BRAND_LOGO_URL, BRAND_ACCENT_COLOR) on
 * every page. The accent colour reaches the pages as a small generated
 * stylesheet, /assets/brand.css, served from this origin: the CSP's
 * `style-src 'self'` stays as it is, with no inline style anywhere.
 */

export type Branding = Config['branding'];

export const DEFAULT_BRANDING: Branding = { name: 'Gatehouse', logoUrl: undefined, accentColor: '#2f5bd3' };

/** The branding and the URL of its stylesheet, as the layout uses them. */
export interface PageBranding extends Branding {
  stylesheet: string;
}

/** Per Koa application (one per oidc-provider instance), set once when it is built. */
const byApp = new WeakMap<object, PageBranding>();

export function setBranding(app: object, branding: PageBranding): void {
  byApp.set(app, branding);
}

export function brandingOf(ctx: Pick<Context, 'app'>): PageBranding {
  return byApp.get(ctx.app) ?? { ...DEFAULT_BRANDING, stylesheet: BRAND_STYLESHEET_PATH };
}

// ---------------------------------------------------------------- colours

type Rgb = [number, number, number];

const parse = (hex: string): Rgb => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
const hex = (c: Rgb) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

/** WCAG 2 relative luminance. */
function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

export function contrast(a: string, b: string): number {
  const [x, y] = [luminance(parse(a)), luminance(parse(b))].sort((m, n) => n - m);
  return (x + 0.05) / (y + 0.05);
}

/** The colour moved toward `to` (white or black) in small steps until it reads on `background` (4.5:1, WCAG AA). */
function readableOn(color: string, background: string, to: Rgb): string {
  const from = parse(color);
  for (let t = 0; t <= 1; t += 0.05) {
    const c = hex(from.map((v, i) => v + (to[i] - v) * t) as Rgb);
    if (contrast(c, background) >= 4.5) return c;
  }
  return hex(to);
}

/** The card colours of style.css, light and dark. */
const CARD_LIGHT = '#ffffff';
const CARD_DARK = '#161b22';

/**
 * The generated rules: `--brand` fills primary buttons with `--on-brand` text
 * (black or white, whichever reads better); `--accent` (links, outlines) is the
 * brand colour, darkened or lightened only as far as needed to stay readable
 * on the card, in light and in dark mode.
 */
export function brandStylesheet(accentColor: string): string {
  const brand = accentColor.toLowerCase();
  const onBrand = contrast(brand, '#ffffff') >= contrast(brand, '#000000') ? '#ffffff' : '#000000';
  const light = readableOn(brand, CARD_LIGHT, [0, 0, 0]);
  const dark = readableOn(brand, CARD_DARK, [255, 255, 255]);
  return `:root { --brand: ${brand}; --on-brand: ${onBrand}; --accent: ${light}; }\n`
    + `@media (prefers-color-scheme: dark) { :root { --accent: ${dark}; } }\n`;
}

export const BRAND_STYLESHEET_PATH = '/assets/brand.css';

/** The stylesheet and the versioned URL the layout links (a new colour is a new URL, so caches never show the old one). */
export function brandAssets(branding: Branding): { href: string; serve: Middleware } {
  const css = Buffer.from(brandStylesheet(branding.accentColor));
  const version = createHash('sha256').update(css).digest('base64url').slice(0, 10);
  return {
    href: `${BRAND_STYLESHEET_PATH}?v=${version}`,
    serve: async (ctx, next) => {
      if (ctx.method !== 'GET' || ctx.path !== BRAND_STYLESHEET_PATH) return next();
      ctx.type = 'text/css';
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.body = css;
    },
  };
}

/** The origin of an https image, for the page's CSP img-src; undefined for a path on this server. */
export function imageOrigin(url: string | undefined): string | undefined {
  if (!url || !url.startsWith('https://')) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
