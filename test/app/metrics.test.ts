import * as oidc from 'openid-client';
import { exchangeCode, fakeUpstream, signIn, startInProcess, authorize, chooseUpstream, type FakeUpstream, type InProcess, type TestClient } from '../support/in-process.js';

/** The counters move as requests are made (read from the app's own registry, in-process). */

describe('metrics', () => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    // no grace period: the second use of a refresh token is a reuse at once
    server = await startInProcess({ upstreams: [acme], env: { REFRESH_REUSE_GRACE_SECONDS: '0' } });
    client = await server.createClient({ grantTypes: ['authorization_code', 'refresh_token'] });
  });
  afterAll(() => server?.close());

  /** The value of one series, 0 when it has none yet. */
  async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = (await server.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const series = (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
    return series.reduce((sum, v) => sum + Number(v.value), 0);
  }

  it('counts sign-ins by upstream and outcome, tokens by grant type, and refresh-token reuse', async () => {
    acme.signInAs({ subject: 'metrics-1', email: null, emailVerified: false, name: 'M', username: null });
    const before = {
      success: await value('gatehouse_upstream_sign_ins_total', { provider: 'acme', outcome: 'success' }),
      denied: await value('gatehouse_upstream_sign_ins_total', { provider: 'acme', outcome: 'denied' }),
      codes: await value('gatehouse_tokens_issued_total', { grant_type: 'authorization_code' }),
      refreshes: await value('gatehouse_tokens_issued_total', { grant_type: 'refresh_token' }),
      reuse: await value('gatehouse_refresh_token_reuse_total'),
      invalidGrant: await value('gatehouse_token_errors_total', { error: 'invalid_grant' }),
    };
    const { authorization, callback } = await signIn(server.browser(), client, acme);
    const { rp } = await exchangeCode(server, authorization, callback);
    expect(await value('gatehouse_upstream_sign_ins_total', { provider: 'acme', outcome: 'success' })).toBe(before.success + 1);
    expect(await value('gatehouse_tokens_issued_total', { grant_type: 'authorization_code' })).toBe(before.codes + 1);

    // a second sign-in with offline access, to have a refresh token, then use it twice
    const b = server.browser();
    const offline = await signIn(b, client, acme, { scope: 'openid offline_access', prompt: 'consent' });
    const { tokens } = await exchangeCode(server, offline.authorization, offline.callback);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toThrow();
    expect(await value('gatehouse_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(before.refreshes + 1);
    expect(await value('gatehouse_refresh_token_reuse_total')).toBe(before.reuse + 1);
    expect(await value('gatehouse_token_errors_total', { error: 'invalid_grant' })).toBe(before.invalidGrant + 1);

    acme.failFinish('denied');
    const denied = server.browser();
    const a = await authorize(denied, client);
    await chooseUpstream(denied, a.uid, 'acme');
    await denied.follow(await denied.get(acme.redirectBack()));
    acme.failFinish(undefined);
    expect(await value('gatehouse_upstream_sign_ins_total', { provider: 'acme', outcome: 'denied' })).toBe(before.denied + 1);
  });

  it('times requests by route, never by raw path', async () => {
    await fetch(`${server.url}/jwks`);
    await fetch(`${server.url}/interaction/no-such-uid`);
    const series = (await server.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'gatehouse_http_request_duration_seconds')!.values;
    const routes = new Set(series.map((v) => String(v.labels.route)));
    expect(routes).toContain('jwks');
    expect(routes).toContain('/interaction/:uid');
    expect([...routes].some((r) => r.includes('no-such-uid'))).toBe(false);
    const keyAge = (await server.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'gatehouse_signing_key_age_seconds')!;
    expect(keyAge.values.map((v) => v.labels.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const v of keyAge.values) expect(Number(v.value)).toBeGreaterThanOrEqual(0);
    expect((await server.app.metrics.registry.getMetricsAsJSON()).some((m) => m.name === 'process_cpu_user_seconds_total')).toBe(true);
  });
});
