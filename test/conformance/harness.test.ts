/**
 * Self-check of the conformance harness (support/): one sign-in with code + PKCE on
 * an http issuer, and a POSTed authorization request through the https edge.
 * Not a conformance module; it fails when the harness itself breaks.
 */
import { browserAvailable } from '../support/browser.js';
import { codeFlow, launchConformanceBrowser, startConformanceOp, userinfo, type ConformanceBrowser, type ConformanceOp } from './support/index.js';

const describeIf = browserAvailable() ? describe : describe.skip;

describeIf.each([false, true])('conformance harness (https issuer: %s)', (https) => {
  let op: ConformanceOp;
  let browser: ConformanceBrowser;

  beforeAll(async () => {
    op = await startConformanceOp({ https });
    browser = await launchConformanceBrowser(op);
  });
  afterAll(async () => {
    await browser?.close();
    await op?.stop();
  });

  test('signs in through the Google stand-in, consents, and redeems the code', async () => {
    const client = await op.createClient();
    const session = await browser.newSession();
    const flow = await codeFlow(op, session, { client, pkce: true, scope: 'openid email', browser: { method: https ? 'POST' : 'GET' } });
    expect(flow.outcome.seen).toEqual(['login', 'consent']);
    expect(flow.claims.iss).toBe(op.issuer);
    const info = await userinfo(op, flow.accessToken);
    expect(info.body).toMatchObject({ sub: flow.claims.sub, email: 'ada@example.com' });
    await session.close();
  });
});
