/** JSON values with their object keys in order, at any depth. */
const sorted = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(sorted)
  : v && typeof v === 'object' && !(v instanceof Date) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sorted(x)]))
  : v;

const canonical = (v: unknown) => JSON.stringify(sorted(v) ?? null);

/** Field-by-field equality, whatever the key order at any depth (PostgreSQL's JSONB reorders a stored JWK's members). */
export const sameJson = (a: unknown, b: unknown): boolean => canonical(a) === canonical(b);
