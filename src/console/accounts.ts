import type { Context } from 'koa';
import * as accounts from '../services/accounts.js';
import { withdrawConsents } from '../services/consents.js';
import { ServiceError, formatProblem } from '../services/errors.js';
import { grantRole, revokeRole, isRole } from '../services/roles.js';
import { consoleError, consolePage, doneRedirect, field, noticeOf, queryParam, when, type ConsoleArea, type ConsoleContext } from './context.js';

/**
 * Accounts, /console/accounts: the people who signed in, filtered and paged
 * like the management API, each with its role, identities and consents; an
 * admin disables, enables and deletes accounts, withdraws consents and gives
 * console roles, through the same services as `gatehouse accounts` and
 * /admin/v1 (services/accounts.ts, consents.ts, roles.ts), which audit them.
 */

const PAGE_SIZE = 50;

/** The notices this area's pages show after a change (never text from the request). */
const NOTICES = ['Account disabled.', 'Account enabled.', 'Account deleted.', 'Consent withdrawn.', 'Role changed.', 'Nothing changed: it already was so.'] as const;


const accountPath = (id: string) => `/console/accounts/${encodeURIComponent(id)}`;
const problemsOf = (err: ServiceError) => err.problems.map((p) => formatProblem(p));
const isSelf = (ctx: Context, id: string) => (ctx as ConsoleContext).state.console.person.accountId === id;

/**
 * An admin does not disable or delete their own account here: one click would
 * lock them out, and perhaps the console with them (the last admin). Another
 * admin can, or the CLI.
 */
function refuseSelf(ctx: Context, id: string, what: 'disable' | 'delete'): void {
  if (!isSelf(ctx, id)) return;
  throw consoleError(409, 'Not your own account', `You cannot ${what} your own account in the console: you would lose access at once. Ask another admin, or run \`gatehouse accounts ${what} ${id}\`.`, accountPath(id));
}
const nameOf = (a: { name: string | null; username: string | null; email: string | null; id: string }) => a.name || a.username || a.email || a.id;

interface Confirmation {
  title: string;
  /** what will happen, one paragraph each */
  explain: string[];
  action: string;
  button: string;
  hidden?: Record<string, string>;
  back: string;
}

const confirmPage = (ctx: Context, c: Confirmation) => consolePage(ctx, 'accounts', 'accounts-confirm', { ...c, hidden: Object.entries(c.hidden ?? {}) });

/** The list's filters from the query: the same as GET /admin/v1/accounts takes. */
function listQuery(ctx: Context) {
  const limit = queryParam(ctx, 'limit');
  return {
    email: queryParam(ctx, 'email'),
    provider: queryParam(ctx, 'provider'),
    disabled: queryParam(ctx, 'disabled') === 'true',
    after: queryParam(ctx, 'after'),
    // anything not a number is refused by the service, as the API refuses it
    limit: limit === undefined ? PAGE_SIZE : /^\d{1,9}$/.test(limit) ? Number(limit) : Number.NaN,
  };
}

/** The link to the page after `after`, with the same filters. */
function nextHref(q: ReturnType<typeof listQuery>, after: string): string {
  const params = new URLSearchParams();
  if (q.email) params.set('email', q.email);
  if (q.provider) params.set('provider', q.provider);
  if (q.disabled) params.set('disabled', 'true');
  if (q.limit !== PAGE_SIZE) params.set('limit', String(q.limit));
  params.set('after', after);
  return `/console/accounts?${params}`;
}

async function listPage(ctx: Context, db: Parameters<typeof accounts.listAccounts>[0]): Promise<void> {
  const q = listQuery(ctx);
  const filters = { email: q.email ?? '', provider: q.provider ?? '', disabled: q.disabled };
  try {
    const items = await accounts.listAccounts(db, q);
    consolePage(ctx, 'accounts', 'accounts', {
      filters, notice: noticeOf(ctx, NOTICES), paged: Boolean(q.after),
      items: items.map((a) => ({ id: a.id, name: nameOf(a), email: a.email, providers: a.providers, role: a.role, disabled: a.disabled, created: when(a.createdAt) })),
      next: items.length === q.limit ? nextHref(q, items[items.length - 1].id) : null,
    });
  } catch (err) {
    if (!(err instanceof ServiceError && err.code === 'invalid')) throw err;
    consolePage(ctx, 'accounts', 'accounts', { filters, items: [], next: null, paged: false, problems: problemsOf(err) }, 400);
  }
}

async function detailPage(ctx: Context, db: Parameters<typeof accounts.showAccount>[0], id: string): Promise<void> {
  const a = await accounts.showAccount(db, id);
  consolePage(ctx, 'accounts', 'accounts-show', {
    notice: noticeOf(ctx, NOTICES),
    self: isSelf(ctx, id),
    account: {
      id: a.id, name: a.name, username: a.username, email: a.email, emailVerified: a.emailVerified, role: a.role, disabled: a.disabled,
      created: when(a.createdAt), updated: when(a.updatedAt), disabledAt: when(a.disabledAt), title: nameOf(a), path: accountPath(a.id),
    },
    identities: a.identities.map((i) => ({ provider: i.provider, subject: i.subject, email: i.email, emailVerified: i.emailVerified, linked: when(i.linkedAt), updated: when(i.updatedAt) })),
    consents: a.consents.map((c) => ({ clientId: c.clientId, clientName: c.clientName, granted: when(c.grantedAt), updated: when(c.updatedAt) })),
    sessions: a.sessions.active,
  });
}

/** The confirmation before a person changes their own role away from admin (they would lose the console's controls at once). */
function selfDemotion(ctx: Context, id: string, role: string): Confirmation {
  const after = role === 'viewer' ? 'You will be a viewer: you will see the console but no longer change anything, including roles.' : 'You will have no console access at all: your next page is refused.';
  return {
    title: 'Remove your own admin role?',
    explain: ['This is your own account.', after, 'Another admin, or `gatehouse accounts grant-role` on the server, can give it back.'],
    action: `${accountPath(id)}/role`, button: role === 'viewer' ? 'Make me a viewer' : 'Remove my role', hidden: { role, confirm: 'yes' }, back: accountPath(id),
  };
}

export const accountsArea: ConsoleArea = (router, { db }) => {
  router.get('/console/accounts', (ctx) => listPage(ctx, db));
  router.get('/console/accounts/:id', (ctx) => detailPage(ctx, db, ctx.params.id));

  router.get('/console/accounts/:id/disable', async (ctx) => {
    const a = await accounts.showAccount(db, ctx.params.id);
    refuseSelf(ctx, a.id, 'disable');
    confirmPage(ctx, {
      title: `Disable ${nameOf(a)}?`,
      explain: [
        `Disabling ends everything of this account now: its ${a.sessions.active} live session(s), its grants, authorization codes and stored tokens (introspection then says inactive, refresh is refused), and it forgets the account's remembered consents.`,
        'While it is disabled, signing in is refused. JWT access tokens already issued are not stored: an API that checks them itself accepts them until they expire.',
        'Enabling it later lets the person sign in again; what was ended stays ended.',
      ],
      action: `${accountPath(a.id)}/disable`, button: 'Disable the account', back: accountPath(a.id),
    });
  });
  router.post('/console/accounts/:id/disable', async (ctx) => {
    refuseSelf(ctx, ctx.params.id, 'disable');
    const change = await accounts.disableAccount(db, ctx.params.id);
    doneRedirect(ctx, accountPath(change.id), change.changed ? 'Account disabled.' : 'Nothing changed: it already was so.');
  });
  router.post('/console/accounts/:id/enable', async (ctx) => {
    const change = await accounts.enableAccount(db, ctx.params.id);
    doneRedirect(ctx, accountPath(change.id), change.changed ? 'Account enabled.' : 'Nothing changed: it already was so.');
  });

  router.get('/console/accounts/:id/delete', async (ctx) => {
    const a = await accounts.showAccount(db, ctx.params.id);
    refuseSelf(ctx, a.id, 'delete');
    confirmPage(ctx, {
      title: `Delete ${nameOf(a)}?`,
      explain: [
        `Deleting erases the account, its ${a.identities.length} linked identit${a.identities.length === 1 ? 'y' : 'ies'} and ${a.consents.length} remembered consent(s), and ends its sessions, grants, codes and stored tokens. It cannot be undone.`,
        'The audit trail is kept, naming the account only by its id. If the person signs in again, they get a new account.',
      ],
      action: `${accountPath(a.id)}/delete`, button: 'Delete the account', back: accountPath(a.id),
    });
  });
  router.post('/console/accounts/:id/delete', async (ctx) => {
    refuseSelf(ctx, ctx.params.id, 'delete');
    await accounts.deleteAccount(db, ctx.params.id);
    doneRedirect(ctx, '/console/accounts', 'Account deleted.');
  });

  router.get('/console/accounts/:id/consents/:clientId/withdraw', async (ctx) => {
    const a = await accounts.showAccount(db, ctx.params.id);
    const consent = a.consents.find((c) => c.clientId === ctx.params.clientId);
    if (!consent) throw consoleError(404, 'Not found', 'This account has no remembered consent for that app.', accountPath(a.id));
    confirmPage(ctx, {
      title: `Withdraw the consent to ${consent.clientName || consent.clientId}?`,
      explain: [
        `${nameOf(a)} will be asked again the next time ${consent.clientName || consent.clientId} asks for access.`,
        'The grant behind it is revoked: its refresh tokens, stored access tokens and codes stop working.',
      ],
      action: `${accountPath(a.id)}/consents/${encodeURIComponent(consent.clientId)}/withdraw`, button: 'Withdraw the consent', back: accountPath(a.id),
    });
  });
  router.post('/console/accounts/:id/consents/:clientId/withdraw', async (ctx) => {
    const withdrawn = await withdrawConsents(db, { accountId: ctx.params.id, clientId: ctx.params.clientId });
    doneRedirect(ctx, accountPath(ctx.params.id), withdrawn.length ? 'Consent withdrawn.' : 'Nothing changed: it already was so.');
  });

  // roles: audited by the service; taking one's own admin role away asks first
  router.post('/console/accounts/:id/role', async (ctx) => {
    const id = ctx.params.id;
    const role = field(ctx, 'role');
    if (role !== 'none' && !isRole(role)) throw consoleError(400, 'That did not work', 'The role must be admin, viewer or none.', accountPath(id));
    if (isSelf(ctx, id) && role !== 'admin' && field(ctx, 'confirm') !== 'yes') return confirmPage(ctx, selfDemotion(ctx, id, role));
    // the console never leaves itself without an admin (the CLI still can)
    const keep = { keepAnAdmin: true };
    const change = role === 'none' ? await revokeRole(db, id, undefined, keep) : await grantRole(db, id, role, undefined, keep);
    doneRedirect(ctx, accountPath(id), change.changed ? 'Role changed.' : 'Nothing changed: it already was so.');
  });
};
