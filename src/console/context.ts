import type Router from '@koa/router';
import type { Context } from 'koa';
import type { default as Provider } from 'oidc-provider';
import type { Logger } from 'pino';
import type { JWK } from 'jose';
import type { Db } from '../storage/database.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import type { Role } from '../services/roles.js';
import { ServiceError, formatProblem, type Problem } from '../services/errors.js';
import { render, redirectTo } from '../web/pages.js';
import { PageError } from '../web/page-error.js';
import { formOf } from '../web/form-body.js';

/**
 * What every area of the console shares: its dependencies, the signed-in
 * person on each request (set by the gate in routes.ts), and how a console
 * page is rendered, answered and refused.
 */

export interface ConsoleDeps {
  provider: Provider;
  db: Db;
  cache: AdminDataCache;
  issuer: string;
  logger: Logger;
  /** the provider's signing keys (the overview shows their schedule) */
  keys: JWK[];
  keyEncryptionKey: Buffer | undefined;
  keyPublishLeadSeconds: number;
  /** REGISTRATION: initial access tokens are made only with initial-access-token */
  registrationMode: string;
  /** CONSOLE_ADMIN_EMAIL: the first admin, by verified email */
  consoleAdminEmail: string | undefined;
  /** the database and Redis, as /readyz sees them */
  health(): Promise<{ database: 'ok' | 'unreachable'; redis?: 'up' | 'down' }>;
  /** tokens issued per hour on this node, the last 24 hours */
  tokenHistory(): Promise<{ hour: Date; count: number }[]>;
}

/** The person using the console on this request, read live by the gate. */
export interface ConsolePerson {
  accountId: string;
  role: Role;
  name: string | null;
  email: string | null;
}

export interface ConsoleState {
  person: ConsolePerson;
  /** the token every form of this page carries */
  csrf: string;
}

export type ConsoleContext = Context & { state: { console: ConsoleState } };

/** An area of the console: adds its routes (under /console) to the console's router. */
export type ConsoleArea = (router: Router, deps: ConsoleDeps) => void;

export const NAV = [
  { href: '/console', label: 'Overview', area: 'overview' },
  { href: '/console/clients', label: 'Clients', area: 'clients' },
  { href: '/console/apis', label: 'APIs', area: 'apis' },
  { href: '/console/accounts', label: 'Accounts', area: 'accounts' },
  { href: '/console/keys', label: 'Signing keys', area: 'keys' },
  { href: '/console/webhooks', label: 'Webhooks', area: 'webhooks' },
  { href: '/console/registration-tokens', label: 'Registration tokens', area: 'registration-tokens' },
  { href: '/console/audit', label: 'Audit trail', area: 'audit' },
] as const;

export type AreaName = (typeof NAV)[number]['area'];

/**
 * Renders views/console/<view>.eta in the console's layout, with the person,
 * their role, the form token and the navigation (`area` marks the current one).
 */
export function consolePage(ctx: Context, area: AreaName, view: string, data: Record<string, unknown>, status = 200): void {
  const { person, csrf } = (ctx as ConsoleContext).state.console;
  render(ctx, `console/${view}`, { ...data, console: { person, csrf, nav: NAV, area, canWrite: person.role === 'admin' } }, status);
}

/** After a change: back to a page, with a notice chosen from a fixed list (never text from the request). */
export function doneRedirect(ctx: Context, path: string, notice: string): void {
  redirectTo(ctx, `${path}${path.includes('?') ? '&' : '?'}done=${encodeURIComponent(notice)}`);
}

/** A console refusal as the error page, with a way back. */
export const consoleError = (status: number, title: string, message: string, back = '/console') => new PageError(status, title, message, back);

/** One field of the form: a trimmed string ('' when absent; a repeated field is refused). */
export function field(ctx: Context, name: string): string {
  const v = formOf(ctx)[name];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw consoleError(400, 'That did not work', `The field ${name} was sent more than once.`);
  return v.trim();
}

/** A field that may repeat (checkboxes), as a list of non-empty strings. */
export function fields(ctx: Context, name: string): string[] {
  const v = formOf(ctx)[name];
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.filter((x): x is string => typeof x === 'string').map((x) => x.trim()).filter(Boolean);
}

/** Lines of a textarea, one value per line, blank lines dropped. */
export const lines = (text: string) => text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/** A query parameter given once, or undefined. */
export function queryParam(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A date as every console page shows it: ISO for <time datetime>, and minutes in UTC to read. */
export const when = (d: Date | null | undefined) => (d ? { iso: d.toISOString(), text: `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` } : null);

/** Words of a text field separated by spaces (scopes, client ids). */
export const words = (text: string) => text.split(/\s+/).filter(Boolean);

/**
 * Runs a change; a refusal the page shows in place (with the person's input
 * kept) comes back as its code and problems, and nothing was changed. Any
 * other error goes on to the gate's boundary.
 */
export async function tryChange<T>(
  change: () => Promise<T>, codes: ServiceError['code'][] = ['invalid'],
): Promise<{ done: T } | { refused: ServiceError['code']; problems: Problem[] }> {
  try {
    return { done: await change() };
  } catch (err) {
    if (!(err instanceof ServiceError) || !codes.includes(err.code)) throw err;
    return { refused: err.code, problems: err.problems.length ? err.problems : [{ path: [], message: err.message }] };
  }
}

/**
 * Problems as the lines a page lists ("path: message"; a refusal of the whole
 * thing is its message alone). `own` are the form's own (what it could not
 * read): they stand in place of the service's about the same field.
 */
export function problemLines(problems: Problem[], own: Problem[] = []): string[] {
  const ownFields = new Set(own.map((p) => p.path[0]));
  return [...own, ...problems.filter((p) => !ownFields.has(p.path[0]))].map((p) => (p.path.length ? formatProblem(p) : p.message));
}

/** The notice a page was sent back with (doneRedirect), when it is one of the page's own sentences: never text from the request. */
export function noticeOf(ctx: Context, notices: readonly string[]): string | undefined {
  const done = queryParam(ctx, 'done');
  return done && notices.includes(done) ? done : undefined;
}
