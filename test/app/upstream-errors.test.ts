import type { ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
import {
  authorize, backLinkOf, chooseUpstream, closedPort, configureTransport, fakeUpstream, listen, startInProcess, textOf, toUpstreamError, upstreamFetch, UpstreamError,
  type FakeUpstream, type InProcess, type TestClient, type UpstreamErrorKind,
} from '../support/in-process.js';

/** Upstream failures: what a person sees, and how real failures are classified. */

describe('upstream failures as a person sees them', () => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ upstreams: [acme] });
    client = await server.createClient({ name: 'Sample App' });
  });
  afterAll(() => server?.close());
  afterEach(() => {
    acme.failStart(undefined);
    acme.failFinish(undefined);
  });

  /** Chooses Acme on a fresh login page; returns the page Gatehouse answers with. */
  async function startAtAcme() {
    const b = server.browser();
    const { uid } = await authorize(b, client);
    return { b, uid, page: await chooseUpstream(b, uid, 'acme') };
  }

  /** Chooses Acme and comes back from it; returns the page the callback ends on. */
  async function backFromAcme() {
    const { b, uid } = await startAtAcme();
    const { last } = await b.follow(await b.get(acme.redirectBack()));
    return { b, uid, page: last };
  }

  /** The person follows "Go back", tries again, and gets through to consent. */
  async function retrySucceeds(b: ReturnType<InProcess['browser']>, uid: string) {
    const login = await b.get(`/interaction/${uid}`);
    expect(login.status).toBe(200);
    await chooseUpstream(b, uid, 'acme');
    const { last } = await b.follow(await b.get(acme.redirectBack()));
    expect(textOf(last)).toContain('Allow Sample App?');
  }

  const atFinish: [UpstreamErrorKind, number, string, string][] = [
    ['denied', 400, 'Sign-in cancelled', 'You cancelled signing in with Acme SSO.'],
    ['oauth', 502, 'Sign-in failed', 'Acme SSO refused the sign-in. Please try again.'],
    ['network', 502, 'Sign-in failed', 'Acme SSO could not be reached. Please try again in a moment.'],
    ['unexpected', 502, 'Sign-in failed', 'Signing in with Acme SSO did not work. Please try again.'],
  ];

  it.each(atFinish)('%s when finishing: %i "%s"', async (kind, status, title, message) => {
    acme.signInAs({ subject: `finish-${kind}` });
    acme.failFinish(kind);
    const { b, uid, page } = await backFromAcme();
    expect(page.status).toBe(status);
    expect(textOf(page)).toContain(title);
    expect(textOf(page)).toContain(message);
    expect(page.text).not.toContain('simulated'); // the reason is logged, not shown
    expect(backLinkOf(page)).toBe(`/interaction/${uid}`);
    expect(await server.database.prisma.federatedIdentity.count({ where: { subject: `finish-${kind}` } })).toBe(0);
    acme.failFinish(undefined);
    await retrySucceeds(b, uid);
  });

  it.each(['oauth', 'network', 'unexpected'] as const)('%s when starting: 502, no redirect, nothing pending', async (kind) => {
    acme.failStart(kind);
    const { b, uid, page } = await startAtAcme();
    expect(page.status).toBe(502);
    expect(page.location).toBeNull();
    expect(textOf(page)).toContain('Sign-in failed');
    expect(textOf(page)).toContain(atFinish.find(([k]) => k === kind)![3]);
    expect(backLinkOf(page)).toBe(`/interaction/${uid}`);
    expect(b.cookie('gatehouse.upstream')).toBeUndefined();
    acme.failStart(undefined);
    await retrySucceeds(b, uid);
  });

  describe('shows anything else an upstream throws as the generic failure, never a 500 or a stack', () => {
    const thrown: [string, unknown][] = [
      ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'sub')")],
      ['a string', 'secret-internal-detail'],
    ];

    it.each(thrown)('%s when finishing', async (_, value) => {
      acme.failFinish({ thrown: value });
      const { uid, page } = await backFromAcme();
      expect(page.status).toBe(502);
      expect(textOf(page)).toContain('Signing in with Acme SSO did not work. Please try again.');
      expect(page.text).not.toMatch(/TypeError|Cannot read|secret-internal-detail|\n\s+at /);
      expect(backLinkOf(page)).toBe(`/interaction/${uid}`);
    });

    it.each(thrown)('%s when starting', async (_, value) => {
      acme.failStart({ thrown: value });
      const { page } = await startAtAcme();
      expect(page.status).toBe(502);
      expect(textOf(page)).toContain('Signing in with Acme SSO did not work. Please try again.');
      expect(page.text).not.toMatch(/TypeError|Cannot read|secret-internal-detail|\n\s+at /);
    });
  });
});

describe('upstream failures classified at the boundary (upstreamFetch, toUpstreamError)', () => {
  /** An openid-client configuration for a provider at `base`, with the transport the upstreams use. */
  function relyingParty(base: string, timeout = 10) {
    const config = new oidc.Configuration(
      { issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token` },
      'client',
      'secret',
    );
    configureTransport(config, 'Acme SSO', base, timeout);
    return config;
  }

  /** What authorizationCodeGrant throws against `base` for a callback with these parameters. */
  async function codeGrantFailure(base: string, params: Record<string, string> = { code: 'c', state: 's' }, timeout?: number) {
    const callback = new URL(`http://localhost/cb?${new URLSearchParams(params)}`);
    const config = relyingParty(base, timeout);
    return oidc.authorizationCodeGrant(config, callback, { expectedState: 's', pkceCodeVerifier: 'v'.repeat(43) }).then(
      () => { throw new Error('the grant unexpectedly succeeded'); },
      (err: unknown) => toUpstreamError(err, 'Acme SSO'),
    );
  }

  /** A token endpoint that answers with this status and JSON body, or never answers. */
  async function tokenEndpoint(answer?: { status: number; body: unknown }) {
    return listen((_req, res: ServerResponse) => {
      if (answer) res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  }

  it('classifies a refused connection as network', async () => {
    const port = await closedPort();
    const e = await upstreamFetch('Acme SSO')(`http://127.0.0.1:${port}/token`, { method: 'GET' } as never).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e).toMatchObject({ kind: 'network', message: 'Acme SSO could not be reached (ECONNREFUSED)' });
    // the original failure stays attached for the log
    expect(String((e as Error).cause)).toMatch(/fetch failed/);
  });

  it('classifies a refused connection inside openid-client as network', async () => {
    const port = await closedPort();
    expect(await codeGrantFailure(`http://127.0.0.1:${port}`)).toMatchObject({ kind: 'network', message: 'Acme SSO could not be reached (ECONNREFUSED)' });
  });

  it('classifies a fetch timeout (AbortSignal.timeout) as network, "did not answer in time"', async () => {
    const silent = await tokenEndpoint();
    try {
      const e = await upstreamFetch('Acme SSO')(`${silent.url}/token`, { method: 'GET', signal: AbortSignal.timeout(100) } as never).catch((err: unknown) => err);
      expect(e).toMatchObject({ kind: 'network', message: 'Acme SSO did not answer in time' });
    } finally {
      await silent.close();
    }
  });

  it('classifies a timeout inside openid-client (config.timeout, as the upstreams set it) as network too', async () => {
    const silent = await tokenEndpoint();
    try {
      expect(await codeGrantFailure(silent.url, undefined, 0.2)).toMatchObject({ kind: 'network', message: 'Acme SSO did not answer in time' });
    } finally {
      await silent.close();
    }
  });

  it('classifies an OAuth error body as oauth, with the error and its description', async () => {
    const refusing = await tokenEndpoint({ status: 400, body: { error: 'invalid_grant', error_description: 'code expired' } });
    try {
      expect(await codeGrantFailure(refusing.url)).toMatchObject({ kind: 'oauth', message: 'Acme SSO: invalid_grant (code expired)' });
    } finally {
      await refusing.close();
    }
  });

  it('finds an OAuth error in a 200 answer too (GitHub answers token errors with 200)', async () => {
    const github = await tokenEndpoint({ status: 200, body: { error: 'bad_verification_code', error_description: 'The code is wrong' } });
    try {
      expect(await codeGrantFailure(github.url)).toMatchObject({ kind: 'oauth', message: 'Acme SSO: bad_verification_code (The code is wrong)' });
    } finally {
      await github.close();
    }
  });

  it('classifies access_denied in the callback as denied', async () => {
    const e = await codeGrantFailure('http://127.0.0.1:9', { error: 'access_denied', state: 's' });
    expect(e).toMatchObject({ kind: 'denied', message: 'Acme SSO: access denied' });
  });

  it('classifies anything else as unexpected, and keeps an UpstreamError as it is', async () => {
    expect(toUpstreamError(new SyntaxError('Unexpected token < in JSON'), 'Acme SSO')).toMatchObject({ kind: 'unexpected' });
    const original = new UpstreamError('oauth', 'already classified');
    expect(toUpstreamError(original, 'Acme SSO')).toBe(original);
  });
});
