import {
  CLAIM_MARGIN_MS, GIVE_UP_AFTER_MS, LOCK_MS, MAX_RETRY_AFTER_MS, nextAttempt, requestBudget, retryAfterMs, TIMEOUT_MS, withDeadline,
} from '../../src/services/webhooks/delivery.js';

/**
 * When a webhook attempt ends and when the next one may start: the request's
 * own deadline (inside its claim), Retry-After, and the backoff.
 * (test/integration/webhooks.test.ts has the same under GC pressure and
 * against real receivers.)
 */

const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('the deadline of an attempt', () => {
  it('aborts the work after its time, with a TimeoutError naming it', async () => {
    const started = Date.now();
    let seen: AbortSignal | undefined;
    const run = withDeadline(150, new AbortController().signal, (signal) => {
      seen = signal;
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    await expect(run).rejects.toMatchObject({ name: 'TimeoutError', message: 'timed out after 0.15 s' });
    expect(seen!.aborted).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('settles at its time even when the work ignores the signal (a body that never ends)', async () => {
    const started = Date.now();
    await expect(withDeadline(100, new AbortController().signal, () => new Promise(() => {}))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('ends at once when the worker stops, and when it had already stopped', async () => {
    const stopping = new AbortController();
    const run = withDeadline(60_000, stopping.signal, () => new Promise(() => {}));
    setTimeout(() => stopping.abort(), 20);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    await expect(withDeadline(60_000, stopping.signal, async (signal) => signal.aborted)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('leaves no timer or listener behind', async () => {
    const stopping = new AbortController();
    const before = activeTimers();
    expect(await withDeadline(60_000, stopping.signal, async () => 'done')).toBe('done');
    await expect(withDeadline(60_000, stopping.signal, async () => { throw new Error('refused'); })).rejects.toThrow('refused');
    expect(activeTimers()).toBe(before);
    // a later stop aborts nothing that has ended (no unhandled rejection either)
    stopping.abort();
    await new Promise((r) => setImmediate(r));
  });

  it('fits inside the claim: the whole timeout normally, what the claim has left less a margin otherwise', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(LOCK_MS).toBeGreaterThanOrEqual(TIMEOUT_MS + 2 * CLAIM_MARGIN_MS);
    expect(requestBudget(new Date(now + LOCK_MS), now)).toBe(TIMEOUT_MS);
    expect(requestBudget(new Date(now + LOCK_MS), now + 7000)).toBe(LOCK_MS - 7000 - CLAIM_MARGIN_MS);
    expect(requestBudget(new Date(now + LOCK_MS), now + LOCK_MS - CLAIM_MARGIN_MS)).toBeLessThanOrEqual(0);
    expect(requestBudget(new Date(now + LOCK_MS), now + LOCK_MS + 1)).toBeLessThan(0);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');

  it('reads delay-seconds and HTTP-dates (the three forms of RFC 9110)', () => {
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 12:10:00 GMT', now)).toBe(600_000);
    expect(retryAfterMs('Thursday, 01-Jan-26 12:10:00 GMT', now)).toBe(600_000);
    expect(retryAfterMs('Thu Jan  1 12:10:00 2026', now)).toBeDefined();
    // a date that has passed: at once (the backoff still applies)
    expect(retryAfterMs('Thu, 01 Jan 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('is at most an hour', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(3_600_000);
    expect(retryAfterMs('86400', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs('99999999999999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs('Fri, 02 Jan 2026 12:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores what is not one', () => {
    for (const value of [null, undefined, '', 'soon', '-5', '1.5', '12abc', '2026-01-01T12:10:00Z', 'Mon, garbage']) expect(retryAfterMs(value, now)).toBeUndefined();
  });

  it('sets the next attempt no sooner than it asks, the backoff when that is later, and gives up rather than go past a day', () => {
    const created = new Date(now);
    const mid = () => 0.5;
    expect(nextAttempt(1, created, now, mid, now + 120_000)!.getTime()).toBe(now + 120_000);
    // a Retry-After sooner than the backoff does not hurry it
    expect(nextAttempt(6, created, now, mid, now + 1000)!.getTime()).toBe(now + 1_800_000);
    expect(nextAttempt(1, created, now, mid)!.getTime()).toBe(now + 1000);
    const late = now + GIVE_UP_AFTER_MS - 1_800_000;
    expect(nextAttempt(3, created, late, mid, late + 1_000_000)!.getTime()).toBe(late + 1_000_000);
    expect(nextAttempt(2, created, late, mid, late + MAX_RETRY_AFTER_MS)).toBeNull();
  });
});
