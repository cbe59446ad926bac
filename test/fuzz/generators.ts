import fc from 'fast-check';

/**
 * Shared pieces of the fuzz suites: the seed (fixed by default so CI repeats
 * itself; FUZZ_SEED=<n> replays a run, FUZZ_SEED=random starts a new one) and
 * generators of hostile text.
 */

const DEFAULT_SEED = 20261126;

/** Requests (or CLI runs) per suite; FUZZ_RUNS raises it for a longer session. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

export function fuzzSeed(): number {
  const wanted = process.env.FUZZ_SEED;
  const seed = wanted === 'random' ? Math.floor(Math.random() * 2 ** 31) : wanted ? Number(wanted) : DEFAULT_SEED;
  process.stderr.write(`fuzz seed ${seed} (replay with FUZZ_SEED=${seed})\n`);
  return seed;
}

/** Text that has broken servers before: control characters, NUL, lone surrogates, very long, quotes, traversal, injection. */
export function hostileText(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 3, arbitrary: fc.constantFrom(
      '', ' ', '\u0000', 'a\u0000b', '\ud800', 'a\udc00b', '\r\nSet-Cookie: x=1', '\u202e', '\ufeff', 'é'.repeat(43), '%00', '%', '%zz',
      '../../etc/passwd', '..%2f..%2f', "' OR 1=1 --", '"; DROP TABLE "Client"; --', '${jndi:ldap://x}', '<script>alert(1)</script>',
      '{"__proto__":{"x":1}}', '__proto__', 'constructor', 'null', 'undefined', 'NaN', '-1', '1e309', '99999999999999999999',
      'http://169.254.169.254/', 'javascript:alert(1)', 'https://evil.example/#x', 'a'.repeat(5000),
    ) },
  );
}

/**
 * Dates as text that parse (so they get past "not a date") but lie outside what
 * both databases hold (years 1 to 9999, PostgreSQL refusing year 0), the edges
 * themselves, and arbitrary times over JavaScript's whole range.
 */
export function hostileDate(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(
      '10000-01-01', '+010000-01-01T00:00:00Z', '275760-09-13T00:00:00Z', '+275760-09-13T00:00:00.000Z', '99999', '-000001-01-01T00:00:00Z',
      '-271821-04-20T00:00:00Z', '0000-01-01T00:00:00Z', '0000-12-31T23:59:59.999Z', '0001-01-01', '9999-12-31T23:59:59.999Z', '1970-01-01T00:00:00Z',
      '2026-02-30', '2026-13-01', '2026-11-26T25:00:00Z', '9'.repeat(20), '-1', '0', '1e20',
    ) },
    { weight: 1, arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) },
    { weight: 1, arbitrary: fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }).map((ms) => new Date(ms).toISOString()) },
  );
}

/**
 * Identifiers no database stores (a NUL, a lone UTF-16 surrogate) around a
 * plausible one, as a lookup key would carry them.
 */
export function unstorableId(): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom('', 'app-1', 'gatehouse-account', 'acct_1', 'https://api.example.com'), fc.constantFrom('\u0000', '\ud800', '\udfff', '\u0000\u0000'), fc.boolean())
    .map(([id, bad, before]) => (before ? `${bad}${id}` : `${id}${bad}`));
}

/** Values for the management API's and the account page's parameters: hostile text, unstorable ids, hostile dates, numbers. */
export function hostileParam(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: hostileText() },
    { weight: 2, arbitrary: unstorableId() },
    { weight: 2, arbitrary: hostileDate() },
    { weight: 1, arbitrary: fc.constantFrom('0', '1', '1000', '1001', '999999999', '9007199254740993', 'true', 'false', 'success', 'client', 'consent.granted') },
  );
}
