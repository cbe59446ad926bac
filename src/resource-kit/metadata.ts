import type { Middleware } from 'koa';
import { DPOP_ALGS } from './errors.js';

/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a
 * client which authorization server issues tokens for this API, and how to
 * present them.
 * @see https://www.rfc-editor.org/rfc/rfc9728
 */

/** RFC 9728 §3: the well-known URI suffix. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** How long clients and caches may keep the document (seconds). */
export const METADATA_MAX_AGE_SECONDS = 600;

export interface ProtectedResourceMetadataOptions {
  /** Gatehouse's issuer URL: `authorization_servers` */
  issuer: string;
  /** this API's identifier (its RFC 8707 resource indicator, requireToken's `audience`): `resource` */
  resource: string;
  /** the scopes clients may ask for at this API: `scopes_supported` */
  scopes?: string[];
  /** a human-readable name: `resource_name` */
  resourceName?: string;
  /** a page for developers: `resource_documentation` */
  resourceDocumentation?: string;
  /** `resource_policy_uri` */
  resourcePolicyUri?: string;
  /** `resource_tos_uri` */
  resourceTosUri?: string;
  /**
   * When the identifier has a path (`https://api.example.com/mcp`), also answer at
   * the origin's `/.well-known/oauth-protected-resource`, the fallback MCP
   * clients try. Default true; set false when several APIs share one origin.
   */
  serveAtOrigin?: boolean;
}

/** The document, as served. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: string[];
  scopes_supported?: string[];
  dpop_signing_alg_values_supported: string[];
  dpop_bound_access_tokens_required: boolean;
  resource_name?: string;
  resource_documentation?: string;
  resource_policy_uri?: string;
  resource_tos_uri?: string;
}

/**
 * The metadata URL of a resource identifier (RFC 9728 §3.1): the well-known
 * segment goes between the host and the path (and query), a lone `/` path
 * dropped. `https://api.example.com/mcp` →
 * `https://api.example.com/.well-known/oauth-protected-resource/mcp`.
 * Undefined when the identifier is not an http(s) URL (e.g. a URN), which
 * has no well-known location.
 */
export function protectedResourceMetadataUrl(resource: string): string | undefined {
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash) return undefined;
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}${PROTECTED_RESOURCE_WELL_KNOWN}${path}${url.search}`;
}

/** The document for these options; the middleware serves exactly this. */
export function protectedResourceMetadataDocument(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const { issuer, resource, scopes, resourceName, resourceDocumentation, resourcePolicyUri, resourceTosUri } = options;
  return {
    resource,
    authorization_servers: [issuer],
    // requireToken reads the Authorization header only (RFC 6750 §2.1), Bearer or DPoP
    bearer_methods_supported: ['header'],
    ...(scopes?.length ? { scopes_supported: [...scopes] } : {}),
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    // DPoP-bound tokens are accepted (with a proof), and so are unbound ones
    dpop_bound_access_tokens_required: false,
    ...(resourceName ? { resource_name: resourceName } : {}),
    ...(resourceDocumentation ? { resource_documentation: resourceDocumentation } : {}),
    ...(resourcePolicyUri ? { resource_policy_uri: resourcePolicyUri } : {}),
    ...(resourceTosUri ? { resource_tos_uri: resourceTosUri } : {}),
  };
}

/**
 * Koa middleware serving this API's protected-resource metadata (RFC 9728 §3)
 * at the path of `protectedResourceMetadataUrl(resource)`: for
 * `https://api.example.com/mcp`, `GET /.well-known/oauth-protected-resource/mcp`,
 * and also `/.well-known/oauth-protected-resource` unless `serveAtOrigin` is
 * false; for `https://api.example.com`, `/.well-known/oauth-protected-resource`.
 * JSON, cacheable for METADATA_MAX_AGE_SECONDS, readable cross-origin (it is
 * public, and browser-based clients read it). Mount it before any
 * authentication; everything else passes through.
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.2
 */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): Middleware {
  const { issuer, resource } = options;
  if (!issuer || !resource) throw new TypeError('protectedResourceMetadata: issuer and resource are required');
  const url = protectedResourceMetadataUrl(resource);
  if (!url) throw new TypeError('protectedResourceMetadata: resource must be an http(s) URL without a fragment');
  const paths = new Set([new URL(url).pathname]);
  if (options.serveAtOrigin ?? true) paths.add(PROTECTED_RESOURCE_WELL_KNOWN);
  const body = JSON.stringify(protectedResourceMetadataDocument(options));

  return async function protectedResourceMetadataMiddleware(ctx, next) {
    if (!paths.has(ctx.path)) return next();
    ctx.set('Access-Control-Allow-Origin', '*');
    if (ctx.method === 'OPTIONS') {
      // CORS preflight: MCP clients in a browser send headers of their own
      ctx.status = 204;
      ctx.set('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
      const requested = ctx.get('Access-Control-Request-Headers');
      if (requested) ctx.set('Access-Control-Allow-Headers', requested);
      ctx.set('Access-Control-Max-Age', String(METADATA_MAX_AGE_SECONDS));
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD, OPTIONS');
      return;
    }
    ctx.set('Cache-Control', `public, max-age=${METADATA_MAX_AGE_SECONDS}`);
    ctx.type = 'application/json';
    ctx.body = body;
  };
}
