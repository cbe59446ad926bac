import type { AccountDetails, AccountSummary } from '../services/accounts.js';
import type { RoleChange } from '../services/roles.js';
import { describe, withDatabase } from './context.js';
import type { Command } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/accounts.js');
const roles = () => import('../services/roles.js');

/** Text from an upstream (names, emails, profiles) on one line, control characters escaped. */
const clean = (text: string) => text.toWellFormed().replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
const orDash = (v: string | null | undefined) => (v ? clean(v) : '-');
const when = (d: Date | null | undefined) => (d ? d.toISOString() : '-');

function line(a: AccountSummary): string {
  const state = a.disabled ? `  DISABLED since ${when(a.disabledAt)}` : '';
  const role = a.role ? `  role ${a.role}` : '';
  return `${a.id}  ${orDash(a.email)}  ${orDash(a.name)}  ${a.providers.join(',') || '-'}${role}${state}`;
}

function details(a: AccountDetails): string {
  const parts = [
    describe({
      sub: a.id,
      state: a.disabled ? `disabled since ${when(a.disabledAt)}` : 'enabled',
      role: a.role ?? 'none (no console access)',
      email: a.email ? `${clean(a.email)}${a.emailVerified ? ' (verified)' : ' (unverified)'}` : '-',
      name: orDash(a.name),
      username: orDash(a.username),
      picture: orDash(a.picture),
      created: when(a.createdAt),
      updated: when(a.updatedAt),
    }),
    '',
    `identities (${a.identities.length}):`,
    ...a.identities.map((i) => `  ${clean(i.provider)}  ${clean(i.subject)}  ${orDash(i.email)}${i.email ? (i.emailVerified ? ' (verified)' : ' (unverified)') : ''}  linked ${when(i.linkedAt)}\n    profile ${clean(JSON.stringify(i.profile))}`),
    '',
    `consents (${a.consents.length}):`,
    ...a.consents.map((c) => `  ${clean(c.clientId)}  ${orDash(c.clientName)}  granted ${when(c.grantedAt)}${c.updatedAt.getTime() !== c.grantedAt.getTime() ? `, updated ${when(c.updatedAt)}` : ''}`),
    '',
    `active sessions: ${a.sessions.active}${a.sessions.active > a.sessions.latest.length ? ` (the ${a.sessions.latest.length} that expire last)` : ''}`,
    ...a.sessions.latest.map((s) => `  expires ${when(s.expiresAt)}  signed in ${when(s.signedInAt)}  apps ${s.clients.map(clean).join(',') || '-'}`),
  ];
  return parts.join('\n');
}

function granted(r: RoleChange): string {
  const disabled = r.disabled ? ' (the account is disabled: it cannot sign in until it is enabled)' : '';
  if (!r.changed) return `account ${r.accountId} already has role ${r.role}; nothing changed${disabled}`;
  return `granted role ${r.role} to account ${r.accountId}${r.previousRole ? ` (was ${r.previousRole})` : ''}${disabled}`;
}

function revoked(r: RoleChange): string {
  return r.changed
    ? `revoked role ${r.previousRole} from account ${r.accountId}; it has no console access`
    : `account ${r.accountId} has no role; nothing changed`;
}

export const accountsCommand: Command = {
  name: 'accounts',
  summary: 'people who signed in: list, show, disable, enable, delete, console roles',
  intro: `An account is a person who signed in through an upstream (GitHub, an OIDC provider);
its id is Gatehouse's own random sub. Disabling ends at once every session, grant, code and
stored token of the account and refuses its sign-ins until it is enabled again; deleting
erases it (the right to erasure). A console role (admin: read and change; viewer: read
only) lets the person use the console; an account with no role has none.`,
  fieldFlags: { limit: '--limit', email: '--email', provider: '--provider' },
  subcommands: [
    {
      usage: 'list',
      summary: 'list accounts by id, a page at a time',
      flags: {
        email: { type: 'string', arg: '<email>', help: "the account's email or one of its identities'" },
        provider: { type: 'string', arg: '<id>', help: 'accounts with an identity of this upstream' },
        disabled: { type: 'boolean', help: 'only disabled accounts' },
        limit: { type: 'string', arg: '<n>', help: 'at most this many, 1 to 1000 (default 100)' },
        after: { type: 'string', arg: '<sub>', help: 'the page after this account id (the last one listed)' },
      },
      async run({ values, out }) {
        const { listAccounts } = await service();
        const limit = values.limit === undefined ? undefined : /^\d+$/.test(String(values.limit)) ? Number(values.limit) : Number.NaN;
        await withDatabase(async ({ prisma: db }) => {
          const accounts = await listAccounts(db, {
            email: values.email as string | undefined,
            provider: values.provider as string | undefined,
            disabled: values.disabled === true,
            after: values.after as string | undefined,
            limit,
          });
          out.print(accounts, () => accounts.map(line).join('\n') || 'no matching accounts');
        });
      },
    },
    {
      usage: 'show <sub>',
      summary: 'claims, state, upstream identities, remembered consents and active sessions',
      argName: 'account id (sub)',
      async run({ arg, out }) {
        const { showAccount } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const account = await showAccount(db, arg);
          out.print(account, () => details(account));
        });
      },
    },
    {
      usage: 'disable <sub>',
      summary: 'refuse its sign-ins and end its sessions, grants, codes and stored tokens now',
      argName: 'account id (sub)',
      async run({ arg, out }) {
        const { disableAccount } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const r = await disableAccount(db, arg);
          out.print(r, () => (r.changed
            ? `disabled account ${r.id}; ended ${r.endedArtifacts} session(s), grant(s), code(s) and stored token(s)`
            : `account ${r.id} is already disabled (since ${when(r.disabledAt)}); nothing changed`));
        });
      },
    },
    {
      usage: 'enable <sub>',
      summary: 'allow its sign-ins again (what disable ended stays ended)',
      argName: 'account id (sub)',
      async run({ arg, out }) {
        const { enableAccount } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const r = await enableAccount(db, arg);
          out.print(r, () => (r.changed ? `enabled account ${r.id}; the person signs in again` : `account ${r.id} is not disabled; nothing changed`));
        });
      },
    },
    {
      usage: 'grant-role <account|email> <admin|viewer>',
      summary: 'give the account a console role (replacing the one it has)',
      notes: `The account is its id (sub) or, with an @, its email (any case); an email that more
than one account has is refused with their ids: name one by its id.`,
      async run({ args: [account, role], out }) {
        const { grantRole } = await roles();
        await withDatabase(async ({ prisma: db }) => {
          const r = await grantRole(db, account, role);
          out.print(r, () => granted(r));
        });
      },
    },
    {
      usage: 'revoke-role <account|email>',
      summary: 'take its console role away (no console access from its next request)',
      argName: 'account id (sub) or email',
      async run({ arg, out }) {
        const { revokeRole } = await roles();
        await withDatabase(async ({ prisma: db }) => {
          const r = await revokeRole(db, arg);
          out.print(r, () => revoked(r));
        });
      },
    },
    {
      usage: 'delete <sub>',
      summary: 'erase the account, its identities, consents, sessions and tokens',
      argName: 'account id (sub)',
      async run({ arg, out }) {
        const { deleteAccount } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const r = await deleteAccount(db, arg);
          out.print(r, () => `deleted account ${r.id}: ${r.identities} identity(ies), ${r.consents} consent(s), ${r.endedArtifacts} session(s), grant(s), code(s) and stored token(s)`);
        });
      },
    },
  ],
  notes: `Exit codes: 0 done, or nothing to do (disable of a disabled account, enable of an
enabled one, a role the account already has, revoke-role of an account without one: the
message says so and nothing changes); 1 no account with that id or email, an email that
several accounts have, or a bad value (--limit, a role); 2 bad usage. On any error nothing
is changed. The audit trail records account.disabled, account.enabled, account.deleted
(with counts only, never the person's email or name), account.role_granted (with the
role and the previous one) and account.role_revoked (with the role taken away).
JWT access tokens for APIs are not stored: an API that validates them itself accepts them
until they expire (at most the API's access-token TTL).`,
};
