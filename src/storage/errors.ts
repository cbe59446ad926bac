// The ESM build of the runtime, the one the generated clients import (scripts/prisma-generate.mjs).
import { PrismaClientInitializationError, PrismaClientKnownRequestError } from '@prisma/client/runtime/client.mjs';

/**
 * Prisma's errors are recognised here, once, and become classes the layers
 * above match with instanceof. Both generated clients share this runtime.
 * @see https://www.prisma.io/docs/orm/reference/error-reference
 */

/** A write would duplicate a unique key (Prisma P2002), e.g. two racing creates of one id. */
export class UniqueViolationError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('a row with this key already exists', options);
    this.name = 'UniqueViolationError';
  }
}

/** A write needed a row that is not there (Prisma P2025), e.g. a delete racing another delete. */
export class RowNotFoundError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the row does not exist', options);
    this.name = 'RowNotFoundError';
  }
}

/** The database cannot be reached or stopped answering: nothing is wrong with the request. */
export class DatabaseUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the database is unavailable', options);
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * Prisma's codes for a database that is down, unreachable, gone or saturated:
 * can't reach (P1001), timed out (P1002, P1008), does not exist (P1003),
 * closed the connection (P1017), no pool connection in time (P2024).
 */
const UNAVAILABLE = new Set(['P1001', 'P1002', 'P1003', 'P1008', 'P1017', 'P2024']);

/** The driver adapter's kinds for the same, when Prisma gives no code of its own. */
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'DatabaseDoesNotExist', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TransactionAlreadyClosed']);

function unavailable(err: PrismaClientKnownRequestError): boolean {
  if (UNAVAILABLE.has(err.code)) return true;
  const cause = (err.meta?.driverAdapterError as { cause?: { kind?: string; originalCode?: string } } | undefined)?.cause;
  // PostgreSQL's "connection exception" (08) and "operator intervention" (57: shutdown) classes
  return UNAVAILABLE_KINDS.has(cause?.kind ?? '') || /^(08|57)/.test(cause?.originalCode ?? '');
}

/** The typed error for a Prisma failure, or the error itself when it is not one we name. */
export function storageError(err: unknown): unknown {
  if (err instanceof PrismaClientKnownRequestError) {
    if (err.code === 'P2002') return new UniqueViolationError({ cause: err });
    if (err.code === 'P2025') return new RowNotFoundError({ cause: err });
    if (unavailable(err)) return new DatabaseUnavailableError({ cause: err });
  }
  if (err instanceof PrismaClientInitializationError) return new DatabaseUnavailableError({ cause: err });
  return err;
}

/** Runs a storage operation, rethrowing Prisma failures as the typed errors above. */
export async function translated<T>(operation: Promise<T> | (() => Promise<T>)): Promise<T> {
  try {
    return await (typeof operation === 'function' ? operation() : operation);
  } catch (err) {
    throw storageError(err);
  }
}
