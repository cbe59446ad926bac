/**
 * Text a database can hold. PostgreSQL refuses a NUL character (and JSON
 * with \u0000) and any string that is not well-formed UTF-16 (a lone
 * surrogate) cannot be encoded as UTF-8; SQLite would take both. So both are
 * refused on both databases, here, once: a lookup by such a key finds
 * nothing, and a write of one fails with UnstorableTextError.
 */

/** true for a string PostgreSQL and SQLite both store as given */
export function isStorable(value: string): boolean {
  return !value.includes('\u0000') && value.isWellFormed();
}

export class UnstorableTextError extends Error {
  constructor(readonly path: string) {
    super(`${path || 'a value'} contains a NUL character or a lone UTF-16 surrogate`);
    this.name = 'UnstorableTextError';
  }
}

/** Throws UnstorableTextError for the first string anywhere in `value` that cannot be stored. */
export function assertStorable(value: unknown, path = ''): void {
  if (typeof value === 'string') {
    if (!isStorable(value)) throw new UnstorableTextError(path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => assertStorable(v, `${path}[${i}]`));
  } else if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!isStorable(k)) throw new UnstorableTextError(path ? `${path}.<key>` : '<key>');
      assertStorable(v, path ? `${path}.${k}` : k);
    }
  }
}
