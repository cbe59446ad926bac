/**
 * What the login and consent pages show of the app asking: its name and, from
 * its registered metadata, its logo (logo_uri), privacy policy (policy_uri) and
 * terms (tos_uri). Links must be http(s); the logo must be https (the page's
 * CSP then names its origin, views.ts), anything else is left out.
 */

export interface AppInfo {
  name: string;
  logo?: string;
  policy?: string;
  tos?: string;
}

type ClientLike = { clientId: string; clientName?: string; metadata(): Record<string, unknown> } | undefined;

/** Longer than any address worth showing; keeps a hostile registration from filling the page. */
const MAX_URL = 2048;

function url(value: unknown, schemes: readonly string[]): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_URL || !URL.canParse(value)) return undefined;
  const parsed = new URL(value);
  if (!schemes.includes(parsed.protocol) || parsed.username || parsed.password) return undefined;
  return parsed.href;
}

export function appInfo(client: ClientLike): AppInfo {
  if (!client) return { name: 'the application' };
  const metadata = client.metadata();
  return {
    name: client.clientName ?? client.clientId,
    logo: url(metadata.logo_uri, ['https:']),
    policy: url(metadata.policy_uri, ['https:', 'http:']),
    tos: url(metadata.tos_uri, ['https:', 'http:']),
  };
}
