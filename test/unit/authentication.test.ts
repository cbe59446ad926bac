import {
  ACR_NO_ASSURANCE, ACR_UPSTREAM_AUTH_TIME, AUTH_TIME_TOLERANCE, authenticationOutcome, essentialAcr, namedSubject,
} from '../../src/services/authentication.js';

/** What an upstream sign-in proves (services/authentication.ts), as pure rules. */

const now = 1_800_000_000;
const oidc = { id: 'corp', reportsAuthTime: true };
const github = { id: 'github', reportsAuthTime: false };
const plain = { login: false, startedAt: now - 20 };

describe('authenticationOutcome', () => {
  it("takes the upstream's auth_time and amr, and says acr accordingly", () => {
    expect(authenticationOutcome(oidc, plain, { authTime: now - 3600, amr: ['pwd', 'mfa', 'pwd', ''] }, now))
      .toEqual({ ok: true, authTime: now - 3600, acr: ACR_UPSTREAM_AUTH_TIME, amr: ['corp', 'pwd', 'mfa'] });
    expect(authenticationOutcome(github, plain, {}, now)).toEqual({ ok: true, authTime: now, acr: ACR_NO_ASSURANCE, amr: ['github'] });
  });

  it('holds prompt=login and max_age to the reported time, within the tolerance', () => {
    const login = { ...plain, login: true };
    expect(authenticationOutcome(oidc, login, { authTime: login.startedAt - AUTH_TIME_TOLERANCE }, now).ok).toBe(true);
    expect(authenticationOutcome(oidc, login, { authTime: login.startedAt - AUTH_TIME_TOLERANCE - 1 }, now)).toMatchObject({ ok: false, error: 'login_required' });
    const maxAge = { ...plain, maxAge: 60 };
    expect(authenticationOutcome(oidc, maxAge, { authTime: now - 60 - AUTH_TIME_TOLERANCE }, now).ok).toBe(true);
    expect(authenticationOutcome(oidc, maxAge, { authTime: now - 61 - AUTH_TIME_TOLERANCE }, now)).toMatchObject({ ok: false, error: 'login_required' });
  });

  it('refuses a re-authentication an upstream that reports auth_time answered without one; GitHub gets acr 0', () => {
    expect(authenticationOutcome(oidc, { ...plain, login: true }, {}, now)).toMatchObject({ ok: false, error: 'login_required' });
    expect(authenticationOutcome(oidc, { ...plain, maxAge: 0 }, {}, now)).toMatchObject({ ok: false, error: 'login_required' });
    expect(authenticationOutcome(github, { ...plain, login: true }, {}, now)).toMatchObject({ ok: true, acr: ACR_NO_ASSURANCE });
  });

  it('ignores a reported time in the future or not a number', () => {
    for (const authTime of [now + 3600, Number.NaN, -1, '1799999999' as unknown as number]) {
      expect(authenticationOutcome(github, plain, { authTime }, now)).toMatchObject({ ok: true, authTime: now, acr: ACR_NO_ASSURANCE });
    }
  });

  it('fails an essential acr it cannot meet with unmet_authentication_requirements', () => {
    const essential = { ...plain, essentialAcr: { values: [ACR_UPSTREAM_AUTH_TIME] } };
    expect(authenticationOutcome(github, essential, {}, now)).toMatchObject({ ok: false, error: 'unmet_authentication_requirements' });
    expect(authenticationOutcome(oidc, essential, { authTime: now }, now)).toMatchObject({ ok: true });
  });
});

describe('essentialAcr', () => {
  it('reads the claims parameter as oidc-provider does (truthy essential, values, value)', () => {
    const A = ACR_UPSTREAM_AUTH_TIME;
    const of = (acr: unknown) => essentialAcr(JSON.stringify({ id_token: { acr } }));
    expect(of({ essential: true, values: [A] })).toEqual({ values: [A] });
    expect(of({ essential: 'true', value: A })).toEqual({ value: A });
    expect(of({ essential: true, values: [] })).toEqual({ values: [] });
    expect(of({ essential: true, values: 'x' })).toEqual({ values: [] });
    expect(of({ essential: false, values: [A] })).toBeUndefined();
    expect(of({ values: [A] })).toBeUndefined();
    expect(essentialAcr('not json')).toBeUndefined();
    expect(essentialAcr(undefined)).toBeUndefined();
  });
});

describe('namedSubject', () => {
  const hint = (payload: object) => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
  it('names the sub of an id_token_hint or of claims.id_token.sub.value', () => {
    expect(namedSubject(hint({ sub: 'alice' }), undefined)).toBe('alice');
    expect(namedSubject(undefined, JSON.stringify({ id_token: { sub: { value: 'bob' } } }))).toBe('bob');
    expect(namedSubject('garbage', undefined)).toBeUndefined();
    expect(namedSubject(undefined, undefined)).toBeUndefined();
  });
});
