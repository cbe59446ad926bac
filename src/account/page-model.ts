import type { Context } from 'koa';
import type { AccountOverview } from '../services/account-page.js';
import type { Upstream } from '../federation/index.js';
import { SCOPE_TEXT } from '../interactions/consent-summary.js';
import type { AccountPageDeps } from './routes.js';

const dateFormat = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeZone: 'UTC' });
const words = (s: string) => s.split(' ').filter(Boolean);


const upstreamName = (upstreams: Map<string, Upstream>, id: string) => upstreams.get(id)?.name ?? id;

/** The line at the top of the page after a change (the change's own redirect names it). */
export function noticeFor(ctx: Context, account: AccountOverview, upstreams: Map<string, Upstream>): string | undefined {
  const { linked, already, withdrawn } = ctx.query;
  if (typeof linked === 'string' && account.identities.some((i) => i.provider === linked)) return `${upstreamName(upstreams, linked)} is now linked to your account.`;
  if (typeof already === 'string' && account.identities.some((i) => i.provider === already)) return `That ${upstreamName(upstreams, already)} account was already linked to yours.`;
  if (withdrawn === '1') return 'Access withdrawn. The app will have to ask you again.';
  return undefined;
}

/** What the page shows of the account: who, the identities that sign in to it, the apps with access. */
export async function describeAccount({ provider, cache, upstreams }: Pick<AccountPageDeps, 'provider' | 'cache' | 'upstreams'>, account: AccountOverview) {
  const apps = [];
  for (const consent of account.consents) {
    const client = await cache.client(consent.clientId);
    const grant = await provider.Grant.find(consent.grantId);
    const oidcScopes = grant ? words(grant.getOIDCScope()) : [];
    const apis = [];
    for (const identifier of Object.keys(grant?.resources ?? {})) {
      apis.push({ name: (await cache.api(identifier))?.name ?? identifier, scopes: words(grant!.getResourceScope(identifier)) });
    }
    apps.push({
      clientId: consent.clientId,
      name: client?.name ?? consent.clientId,
      since: dateFormat.format(consent.createdAt),
      sinceIso: consent.createdAt.toISOString(),
      scopes: oidcScopes.map((s) => SCOPE_TEXT[s] ?? `Use the scope ${s}`),
      apis,
    });
  }
  return {
    who: account.name ?? account.username ?? account.email ?? account.identities[0]?.email ?? null,
    email: account.email,
    identities: account.identities.map((i) => ({
      name: upstreamName(upstreams, i.provider),
      email: i.email,
      since: dateFormat.format(i.linkedAt),
      sinceIso: i.linkedAt.toISOString(),
    })),
    upstreams: [...upstreams.values()].map((u) => ({ id: u.id, name: u.name, linked: account.identities.some((i) => i.provider === u.id) })),
    apps,
  };
}

