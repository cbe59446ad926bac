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
