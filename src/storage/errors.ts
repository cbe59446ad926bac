import { PrismaClientKnownRequestError } from '@prisma/client/runtime/client';

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

/** The typed error for a Prisma failure, or the error itself when it is not one we name. */
export function storageError(err: unknown): unknown {
  if (err instanceof PrismaClientKnownRequestError) {
    if (err.code === 'P2002') return new UniqueViolationError({ cause: err });
    if (err.code === 'P2025') return new RowNotFoundError({ cause: err });
  }
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
