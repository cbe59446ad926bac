import type { Context } from 'koa';
import { ServiceError, type ServiceErrorCode } from '../services/errors.js';

/**
 * RFC 9457 problem details for the management API. A refusal of a rule is the
 * service's own ServiceError, so the messages are the ones the CLI prints;
 * `errors` lists every problem with its path into the request body.
 * @see https://www.rfc-editor.org/rfc/rfc9457
 */

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: { path: (string | number)[]; message: string }[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

const STATUS: Record<ServiceErrorCode, [number, string]> = {
  invalid: [400, 'The request breaks a rule'],
  not_found: [404, 'Not found'],
  conflict: [409, 'Conflict'],
  stale: [412, 'Precondition failed'],
};

export function problemOf(err: ServiceError): ApiProblem {
  const [status, title] = STATUS[err.code];
  return new ApiProblem(status, title, err.message, err.problems.map(({ path, message }) => ({ path, message })));
}

/** Writes a problem as the response. */
export function sendProblem(ctx: Context, problem: ApiProblem): void {
  ctx.status = problem.status;
  for (const [name, value] of Object.entries(problem.headers)) ctx.set(name, value);
  ctx.type = 'application/problem+json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = {
    type: 'about:blank',
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(problem.errors.length ? { errors: problem.errors } : {}),
  };
}
