import type { Db } from '../storage/database.js';
import { createClient, findClient, updateClient } from './clients.js';
import { ServiceError } from './errors.js';

/**
 * Gatehouse's own pages for people sign in through built-in clients, like any
 * app: public, first-party (no consent screen), code + PKCE, with the page's
 * own URL as the one redirect URI.
 */

/** The account page's client (/account). */
export const ACCOUNT_CLIENT_ID = 'gatehouse-account';
/** The admin console's client (/console). */
export const CONSOLE_CLIENT_ID = 'gatehouse-console';

export const accountPageUrl = (issuer: string) => `${issuer}/account`;
export const consoleUrl = (issuer: string) => `${issuer}/console`;

const BUILT_IN = [
  { clientId: ACCOUNT_CLIENT_ID, name: 'Gatehouse account page', url: accountPageUrl },
  { clientId: CONSOLE_CLIENT_ID, name: 'Gatehouse console', url: consoleUrl },
] as const;

/** Whether a client is one of Gatehouse's own (the people's pages do not list them as apps). */
export const isBuiltInClient = (clientId: string) => BUILT_IN.some((c) => c.clientId === clientId);

const isCode = (err: unknown, code: ServiceError['code']) => err instanceof ServiceError && err.code === code;

/**
 * Makes sure each built-in client exists (made by whichever node starts
 * first), and that its redirect URI follows ISSUER when that changes.
 */
export async function ensureBuiltInClients(db: Db, issuer: string): Promise<void> {
  for (const { clientId, name, url } of BUILT_IN) {
    const existing = await findClient(db, clientId).catch((err: unknown) => {
      if (isCode(err, 'not_found')) return null;
      throw err;
    });
    const redirectUri = url(issuer);
    if (!existing) {
      try {
        await createClient(db, {
          clientId, name, tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'], redirectUris: [redirectUri], firstParty: true,
        });
      } catch (err) {
        // another node created it first
        if (!isCode(err, 'conflict')) throw err;
      }
      continue;
    }
    if (existing.redirectUris.length !== 1 || existing.redirectUris[0] !== redirectUri) {
      await updateClient(db, clientId, { redirectUris: [redirectUri] });
    }
  }
}
