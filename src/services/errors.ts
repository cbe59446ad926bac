/**
 * The one error a service throws when a rule refuses something. Every door
 * turns it into its own shape: the CLI prints it, oidc-provider hooks raise
 * the matching OAuth error, and the seed lists its problems with their paths.
 */

export type ServiceErrorCode =
  /** the object named does not exist */
  | 'not_found'
  /** the change clashes with what is stored (a duplicate id, an API still in use) */
  | 'conflict'
  /** the input breaks a rule; `problems` says where */
  | 'invalid'
  /** the object changed since the version the caller read (an ETag that no longer matches) */
  | 'stale';

/** One broken rule: the field it concerns (a path into the input) and why. */
export interface Problem {
  path: (string | number)[];
  message: string;
  /** what a person could do about it, for doors that talk to people (the CLI) */
  hint?: string;
}

export class ServiceError extends Error {
  constructor(
    readonly code: ServiceErrorCode,
    message: string,
    readonly problems: Problem[] = [],
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

/** "path: message" for one problem; a nested path reads a.b[0].c */
export function formatProblem(problem: Problem, prefix: (string | number)[] = []): string {
  const path = [...prefix, ...problem.path].map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
  return `${path || '(root)'}: ${problem.message}`;
}

export const notFound = (message: string) => new ServiceError('not_found', message);
export const conflict = (message: string) => new ServiceError('conflict', message);
export const stale = (what: string) => new ServiceError('stale', `${what} changed since you read it: read it again, then retry your change`);
export const invalid = (problems: Problem[]) => new ServiceError('invalid', problems.map((p) => formatProblem(p)).join('; '), problems);

/** Throws `error` unless `condition` holds. */
export function assertThat(condition: unknown, error: ServiceError): asserts condition {
  if (!condition) throw error;
}
