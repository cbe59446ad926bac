/**
 * Hosts that name this machine. Plain http is accepted only for them: redirect
 * URIs during development, and upstream identity providers run locally.
 */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True for an http: URL on a loopback host; false for anything else, including unparsable input. */
export function isLoopbackHttp(url: string | URL): boolean {
  if (typeof url === 'string' && !URL.canParse(url)) return false;
  const u = typeof url === 'string' ? new URL(url) : url;
  return u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname);
}
