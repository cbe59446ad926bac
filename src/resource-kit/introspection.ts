import { keysUnavailable } from './errors.js';

/** How the resource kit asks Gatehouse about a token (RFC 7662). */
export interface IntrospectionOptions {
  /** the API's own client at Gatehouse: the token's client, or one the API lists as an introspector */
  clientId: string;
  clientSecret: string;
  /** default `${issuer}/token/introspection` */
  endpoint?: string;
  /** how long to wait for an answer, ms; default 3000 */
  timeoutMs?: number;
}

/**
 * A function that says whether Gatehouse still holds a token active. A failure
 * to ask (network, 5xx, a refused client) is a 503 to the caller, never a
 * pass: the token may be fine, so the client should retry, not get a new one.
 * @see https://www.rfc-editor.org/rfc/rfc7662
 */
export function introspector(issuer: string, options: IntrospectionOptions, fetchImpl: typeof fetch = fetch): (token: string) => Promise<boolean> {
  const endpoint = options.endpoint ?? `${issuer.replace(/\/+$/, '')}/token/introspection`;
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
  return async (token) => {
    const controller = new AbortController();
    // a referenced timer: it always fires (AbortSignal.timeout can be collected first on Node 20)
    const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 3000);
    try {
      const res = await fetchImpl(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: controller.signal,
      });
      if (res.status !== 200) throw new Error(`introspection answered ${res.status}`);
      const body = (await res.json()) as { active?: unknown };
      return body.active === true;
    } catch {
      throw keysUnavailable();
    } finally {
      clearTimeout(timer);
    }
  };
}
