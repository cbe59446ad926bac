import { generateSecret, hashSecret, isArgon2idHash, SecretAttemptsLimitedError, SecretVerifier, VerifierBusyError, verifySecret } from '../../src/services/client-secrets.js';
import { createLimits } from '../../src/limits/index.js';
import { createLogger } from '../../src/logger.js';

describe('client secrets', () => {
  it('generates 256-bit base64url secrets', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
  });

  it('hashes with argon2id and verifies', async () => {
    const hash = await hashSecret('s3cret-s3cret-s3cret-s3cret-s3cret');
    expect(isArgon2idHash(hash)).toBe(true);
    expect(hash).not.toContain('s3cret');
    expect(await verifySecret(hash, 's3cret-s3cret-s3cret-s3cret-s3cret')).toBe(true);
    expect(await verifySecret(hash, 'other')).toBe(false);
    expect(await verifySecret('not-a-hash', 'other')).toBe(false);
  });
});

describe('SecretVerifier', () => {
  let hashA: string;
  let hashB: string;
  beforeAll(async () => {
    hashA = await hashSecret('secret-a');
    hashB = await hashSecret('secret-b');
  });

  it('accepts the right secret and rejects others', async () => {
    const v = new SecretVerifier();
    expect(await v.verify('c1', hashA, 'secret-a')).toBe(true);
    expect(await v.verify('c1', hashA, 'secret-a')).toBe(true);
    expect(await v.verify('c1', hashA, 'secret-b')).toBe(false);
    expect(await v.verify('c1', hashA, '')).toBe(false);
  });

  it('caches only successes', async () => {
    const v = new SecretVerifier();
    expect(await v.verify('c1', hashA, 'wrong')).toBe(false);
    expect(v.size).toBe(0);
    expect(await v.verify('c1', hashA, 'secret-a')).toBe(true);
    expect(v.size).toBe(1);
  });

  it('never accepts a cached secret once the stored hash changed (rotation)', async () => {
    const v = new SecretVerifier();
    expect(await v.verify('c1', hashA, 'secret-a')).toBe(true);
    // the client was rotated to secret-b: the old secret must fail against the new hash
    expect(await v.verify('c1', hashB, 'secret-a')).toBe(false);
    expect(await v.verify('c1', hashB, 'secret-b')).toBe(true);
    expect(await v.verify('c1', hashA, 'secret-b')).toBe(false);
  });

  it('keeps entries per client', async () => {
    const v = new SecretVerifier();
    expect(await v.verify('c1', hashA, 'secret-a')).toBe(true);
    // same hash presented for another client id still goes through argon2 and its own entry
    expect(await v.verify('c2', hashB, 'secret-a')).toBe(false);
    expect(v.size).toBe(1);
  });

  it('is bounded, evicting the least recently verified client', async () => {
    const v = new SecretVerifier(2);
    await v.verify('c1', hashA, 'secret-a');
    await v.verify('c2', hashA, 'secret-a');
    await v.verify('c3', hashA, 'secret-a');
    expect(v.size).toBe(2);
  });

  it('shares one argon2 run among concurrent first verifications', async () => {
    // room for one run and no queue: without sharing, nine of these would be refused as busy
    const v = new SecretVerifier(100, { concurrency: 1, queue: 0 });
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify('c1', hashA, 'secret-a')));
    expect(results.every(Boolean)).toBe(true);
  });

  /** Failure limits as the server builds them, counted in this process. */
  function failureLimits(perPair: number, perClient: number) {
    const limits = createLimits({ workers: 1, logger: createLogger('silent') });
    return { perClientAndAddress: limits.limiter(`t-pair-${perPair}-${Math.random()}`, perPair, 60), perClient: limits.limiter(`t-client-${Math.random()}`, perClient, 60) };
  }

  it('refuses a client at an address without argon2 once it failed too often, not another client or address', async () => {
    const v = new SecretVerifier(100, {}, failureLimits(3, 30));
    for (let i = 0; i < 3; i += 1) expect(await v.verify('c1', hashA, `wrong-${i}`, '203.0.113.7')).toBe(false);
    // now even the right secret is refused for that client from that address, with a time to wait
    const refused = await v.verify('c1', hashA, 'secret-a', '203.0.113.7').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SecretAttemptsLimitedError);
    expect((refused as SecretAttemptsLimitedError).retryAfterSeconds).toBeGreaterThan(0);
    expect((refused as SecretAttemptsLimitedError).retryAfterSeconds).toBeLessThanOrEqual(60);
    // ...but not from another address, nor another client from the same address
    expect(await v.verify('c1', hashA, 'secret-a', '198.51.100.1')).toBe(true);
    expect(await v.verify('c2', hashA, 'secret-a', '203.0.113.7')).toBe(true);
  });

  it('reserves a failure before argon2 runs, so a burst of wrong secrets cannot overshoot the limit', async () => {
    const v = new SecretVerifier(100, { concurrency: 1, queue: 100 }, failureLimits(5, 50));
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => v.verify('c1', hashA, `wrong-${i}`, '203.0.113.7')));
    expect(results.filter((r) => r.status === 'fulfilled' && r.value === false)).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(15);
    for (const r of refused) expect(r.reason).toBeInstanceOf(SecretAttemptsLimitedError);
  });

  it('gives the reservation back when the secret was right', async () => {
    const v = new SecretVerifier(100, {}, failureLimits(2, 20));
    expect(await v.verify('c1', hashA, 'wrong-1', '203.0.113.7')).toBe(false);
    expect(await v.verify('c1', hashA, 'secret-a', '203.0.113.7')).toBe(true); // reserved, then given back
    // one failure is counted so far, so one more wrong secret is still checked
    expect(await v.verify('c1', hashA, 'wrong-2', '203.0.113.7')).toBe(false);
    await expect(v.verify('c1', hashA, 'wrong-3', '203.0.113.7')).rejects.toBeInstanceOf(SecretAttemptsLimitedError);
  });

  it("caps a client's failures over all addresses for wrong secrets only: failures elsewhere never lock out the right one", async () => {
    const v = new SecretVerifier(100, {}, failureLimits(2, 4));
    for (const address of ['192.0.2.1', '192.0.2.2']) {
      for (let i = 0; i < 2; i += 1) expect(await v.verify('c1', hashA, `wrong-${address}-${i}`, address)).toBe(false);
    }
    // an address over its own limit is refused before argon2...
    await expect(v.verify('c1', hashA, 'wrong', '192.0.2.1')).rejects.toBeInstanceOf(SecretAttemptsLimitedError);
    // ...and four failures reached the client's ceiling: a wrong secret from a third address is refused
    await expect(v.verify('c1', hashA, 'wrong-3', '192.0.2.3')).rejects.toBeInstanceOf(SecretAttemptsLimitedError);
    // but the right secret from an address without failures of its own is never refused (a distributed lockout)
    expect(await v.verify('c1', hashA, 'secret-a', '192.0.2.4')).toBe(true);
    expect(await v.verify('c2', hashA, 'secret-a', '192.0.2.3')).toBe(true);
  });

  it('never refuses the right secret for failures it has not had: a burst of first verifications reserves at most one', async () => {
    // one failure allowed: before, every concurrent request reserved one ahead of argon2, and all but one were refused
    const v = new SecretVerifier(100, {}, failureLimits(1, 10));
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => v.verify('c1', hashA, 'secret-a', '203.0.113.7')));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(Array.from({ length: 20 }, () => true));
  });

  it('remembers a success before the shared run ends, so a request arriving in between costs no reservation', async () => {
    // a limiter whose refund waits until the test lets it go (a slow Redis round trip)
    const hits: string[] = [];
    let release = () => {};
    let refunding = () => {};
    let held = false;
    const refundStarted = new Promise<void>((resolve) => (refunding = resolve));
    const slow = {
      hit: async (key: string) => {
        hits.push(key);
        return 0;
      },
      refund: () => {
        // only the first refund is held back
        if (held) return Promise.resolve();
        held = true;
        refunding();
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const v = new SecretVerifier(100, {}, { perClientAndAddress: slow, perClient: { hit: async () => 0, refund: async () => {} } });
    const first = v.verify('c1', hashA, 'secret-a', '203.0.113.7');
    await refundStarted;
    // the first verification has succeeded and is giving its reservation back
    expect(await v.verify('c1', hashA, 'secret-a', '203.0.113.7')).toBe(true);
    expect(hits).toHaveLength(1);
    release();
    expect(await first).toBe(true);
  });

  it('counts a failure for every request that shared a wrong secret\'s run, and refuses those over the limit', async () => {
    const v = new SecretVerifier(100, {}, failureLimits(5, 50));
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => v.verify('c1', hashA, 'same-guess', '203.0.113.7')));
    expect(results.filter((r) => r.status === 'fulfilled' && r.value === false)).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(25);
    for (const r of refused) expect(r.reason).toBeInstanceOf(SecretAttemptsLimitedError);
  });

  it('does not pass one address\'s refusal on to a request from another address that shared the run', async () => {
    const v = new SecretVerifier(100, {}, failureLimits(1, 10));
    expect(await v.verify('c1', hashA, 'wrong', '203.0.113.7')).toBe(false);
    const [over, other] = await Promise.allSettled([
      v.verify('c1', hashA, 'secret-a', '203.0.113.7'),
      v.verify('c1', hashA, 'secret-a', '198.51.100.1'),
    ]);
    expect(over).toMatchObject({ status: 'rejected', reason: expect.any(SecretAttemptsLimitedError) });
    expect(other).toEqual({ status: 'fulfilled', value: true });
  });

  it('runs a bounded number of argon2 verifications and fails fast beyond its queue', async () => {
    const v = new SecretVerifier(100, { concurrency: 1, queue: 2 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => v.verify(`c${i}`, hashA, `wrong-${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(3);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(VerifierBusyError);
    // once the queue drains, verification works again
    expect(await v.verify('c9', hashA, 'secret-a')).toBe(true);
  });
});
