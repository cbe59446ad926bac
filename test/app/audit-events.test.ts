import * as oidc from 'openid-client';
import {
  chooseUpstream, databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess, authorize,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { withdrawConsents } from '../../src/services/consents.js';
import { listAudit, withActor, type AuditEvent } from '../../src/services/audit.js';

/**
 * The security events of the audit trail, each produced by the request that
 * causes it, over HTTP against an in-process Gatehouse: sign-in success and
 * failure by upstream, account created and linked, consent granted and
 * withdrawn, refresh-token reuse, a tripped secret-failure limit. No row holds
 * a token, code or secret the test used.
 */

describe.each(databaseKinds())('security events in the audit trail on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let other: FakeUpstream;
  let client: TestClient;
  const used: string[] = [];

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    other = fakeUpstream('other', 'Other SSO');
    server = await startInProcess({
      kind, upstreams: [acme, other],
      env: { ACCOUNT_LINKING: 'verified-email', REFRESH_REUSE_GRACE_SECONDS: '0', SECRET_FAILURE_LIMIT: '1' },
    });
    client = await server.createClient({ name: 'Audited App' });
    used.push(client.clientSecret);
  });
  afterAll(() => server?.close());

  const trail = (action: string) => listAudit(server.database.prisma, { action });
  /** Events are written after the response in some paths: wait for them. */
  async function eventually(action: string, count: number): Promise<AuditEvent[]> {
    for (let i = 0; i < 50; i += 1) {
      const found = await trail(action);
      if (found.length >= count) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    return trail(action);
  }

  it('records a sign-in, the new account and the consent, as the person with their address', async () => {
    acme.signInAs({ subject: 'audit-1', email: 'audit@example.com', emailVerified: true, name: 'Audit Person' });
    const { authorization, callback } = await signIn(server.browser(), client, acme, { scope: 'openid email offline_access', prompt: 'consent' });
    const { tokens } = await exchangeCode(server, authorization, callback);
    used.push(tokens.access_token, tokens.refresh_token!, tokens.id_token!, callback.searchParams.get('code')!);
    const sub = tokens.claims()!.sub;

    const [signedIn] = await eventually('sign_in.succeeded', 1);
    expect(signedIn).toMatchObject({ actorType: 'account', actorId: sub, targetType: 'account', targetId: sub, outcome: 'success', details: { provider: 'acme' } });
    expect(signedIn.address).toMatch(/127\.0\.0\.1|::1/);
    expect(await trail('account.created')).toEqual([expect.objectContaining({ targetId: sub, details: { provider: 'acme' } })]);
    expect(await trail('consent.granted')).toEqual([
      expect.objectContaining({ actorType: 'account', actorId: sub, targetId: `${sub}/${client.clientId}`, details: expect.objectContaining({ clientId: client.clientId, accountId: sub }) }),
    ]);

    // the same verified email through another upstream joins the account
    other.signInAs({ subject: 'other-1', email: 'audit@example.com', emailVerified: true });
    await signIn(server.browser(), client, other);
    expect(await eventually('account.linked', 1)).toEqual([expect.objectContaining({ targetId: sub, details: { provider: 'other' } })]);
  });

  it('records a failed sign-in by upstream and kind, as anonymous', async () => {
    acme.failFinish('network');
    try {
      const b = server.browser();
      const authorization = await authorize(b, client);
      await chooseUpstream(b, authorization.uid, 'acme');
      const back = await b.follow(await b.get(acme.redirectBack()));
      expect(back.last.status).toBe(502);
    } finally {
      acme.failFinish(undefined);
    }
    expect(await eventually('sign_in.failed', 1)).toEqual([
      expect.objectContaining({ actorType: 'anonymous', outcome: 'failure', details: { provider: 'acme', kind: 'network' }, address: expect.any(String) }),
    ]);
  });

  it('records refresh-token reuse with the grant it revoked', async () => {
    acme.signInAs({ subject: 'audit-2', email: null, emailVerified: false });
    const { authorization, callback } = await signIn(server.browser(), client, acme, { scope: 'openid offline_access', prompt: 'consent' });
    const { rp, tokens } = await exchangeCode(server, authorization, callback);
    const next = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    used.push(tokens.refresh_token!, next.refresh_token!, next.access_token);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const [reuse] = await eventually('refresh_token.reuse_detected', 1);
    expect(reuse).toMatchObject({
      actorType: 'client', actorId: client.clientId, outcome: 'failure', targetType: 'grant',
      details: expect.objectContaining({ clientId: client.clientId, grantRevoked: true }),
    });
    expect(reuse.targetId).toEqual(expect.any(String));
  });

  it('records a withdrawn consent, and a tripped secret-failure limit once', async () => {
    const sub = (await trail('account.created'))[0].targetId!;
    await withActor({ type: 'cli' }, () => withdrawConsents(server.database.prisma, { accountId: sub }));
    expect(await trail('consent.withdrawn')).toEqual([expect.objectContaining({ actorType: 'cli', targetId: `${sub}/${client.clientId}` })]);

    const wrong = 'not-the-secret-0123456789abcdefghijkl';
    used.push(wrong);
    const statuses = [];
    for (let i = 0; i < 4; i += 1) {
      const res = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${wrong}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
    expect(await eventually('rate_limit.tripped', 1)).toEqual([
      expect.objectContaining({ outcome: 'failure', details: { limit: 'secret_failures', clientId: client.clientId } }),
    ]);
  });

  it('holds none of the tokens, codes or secrets the test used', async () => {
    const rows = await server.database.prisma.auditEvent.findMany();
    const raw = JSON.stringify(rows);
    expect(used.filter(Boolean).length).toBeGreaterThanOrEqual(8);
    for (const value of used.filter(Boolean)) expect(raw).not.toContain(value);
  });
});
