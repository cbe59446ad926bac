/**
 * An https issuer for a server that speaks plain http, the way a TLS-ending
 * proxy presents it: production refuses a non-https ISSUER, so the server runs
 * with ISSUER=https://localhost:<port> and TRUST_PROXY=true, and every request
 * to that origin goes to http://localhost:<port> with X-Forwarded-Proto: https
 * (what the proxy would add). `edgeFetch` does that for openid-client
 * (its customFetch) and for the Browser below.
 */
export function httpsEdge(port: number) {
  const issuer = `https://localhost:${port}`;
  const edgeFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.origin !== issuer) return fetch(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('x-forwarded-proto', 'https');
    url.protocol = 'http:';
    return fetch(url, { ...init, headers, redirect: init.redirect ?? 'manual' });
  };
  return { issuer, edgeFetch };
}

export interface Hop {
  url: string;
  status: number;
  location: string | null;
  text: string;
}

/**
 * A small cookie-keeping browser: one jar per origin (names only; the paths
 * these flows use are all /), forms posted url-encoded, redirects followed
 * across origins until one leads to `stopAt` (the app's callback), which is
 * not fetched.
 */
export class EdgeBrowser {
  readonly #jars = new Map<string, Map<string, string>>();
  readonly hops: Hop[] = [];
  constructor(readonly fetcher: (url: string | URL, init?: RequestInit) => Promise<Response>) {}

  async request(target: string | URL, form?: Record<string, string>): Promise<Hop> {
    const url = new URL(target);
    const jar = this.#jars.get(url.origin) ?? new Map<string, string>();
    this.#jars.set(url.origin, jar);
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await this.fetcher(url, { method: form ? 'POST' : 'GET', headers, body: form ? new URLSearchParams(form) : undefined, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()));
      if (expired) jar.delete(pair.slice(0, eq));
      else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const hop = { url: url.href, status: res.status, location: res.headers.get('location'), text: await res.text() };
    this.hops.push(hop);
    return hop;
  }

  /** Follows redirects from `hop`; returns the last page, or the redirect to `stopAt` as a URL. */
  async follow(hop: Hop, stopAt: string): Promise<{ page: Hop; callback?: URL }> {
    let current = hop;
    for (let i = 0; i < 15 && current.status >= 300 && current.status < 400 && current.location; i += 1) {
      const next = new URL(current.location, current.url);
      if (next.href.startsWith(stopAt)) return { page: current, callback: next };
      current = await this.request(next);
    }
    return { page: current };
  }

  /** Cookie names held for an origin. */
  cookies(origin: string): string[] {
    return [...(this.#jars.get(origin)?.keys() ?? [])];
  }
}

/** The hidden CSRF field of a page's forms. */
export function csrfOf(page: Hop): string {
  const m = /name="csrf" value="([^"]+)"/.exec(page.text);
  if (!m) throw new Error(`no CSRF token on ${page.url} (${page.status}): ${page.text.slice(0, 500)}`);
  return m[1];
}

/** The action of the form whose button says `label`. */
export function formActionFor(page: Hop, label: RegExp): string {
  for (const m of page.text.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    if (label.test(m[2].replace(/<[^>]+>/g, ' '))) return new URL(m[1].replace(/&amp;/g, '&'), page.url).href;
  }
  throw new Error(`no form with a button matching ${label} on ${page.url} (${page.status}): ${page.text.slice(0, 500)}`);
}
