import { clientInput, formatIssues, redirectUri, apiInput } from '../../src/services/validation.js';

describe('redirect URI rules', () => {
  it.each([
    'https://app.example.com/callback',
    'https://app.example.com/cb?tenant=1',
    'http://localhost:8080/cb',
    'http://127.0.0.1/cb',
    'http://[::1]:9000/cb',
  ])('accepts %s', (uri) => {
    expect(redirectUri.safeParse(uri).success).toBe(true);
  });

  it.each([
    ['http://app.example.com/cb', /https/],
    ['https://app.example.com/cb#frag', /fragment/],
    ['/relative', /absolute/],
    ['javascript:alert(1)', /https/],
    ['https://user:pw@app.example.com/cb', /credentials/],
    ['http://localhost.evil.com/cb', /https/],
  ])('refuses %s', (uri, message) => {
    const result = redirectUri.safeParse(uri);
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.message).join(' ')).toMatch(message);
  });
});

describe('client rules', () => {
  it('fills defaults for a machine client', () => {
    expect(clientInput.parse({ name: 'svc' })).toEqual({
      name: 'svc',
      grantTypes: ['client_credentials'],
      redirectUris: [],
      tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: [],
      resources: [],
      firstParty: false,
      postLogoutRedirectUris: [],
      backchannelLogoutUri: null,
      requirePar: false,
    });
  });

  it('reports every cross-field problem with its path', () => {
    const result = clientInput.safeParse({
      name: 'x',
      grantTypes: ['authorization_code', 'client_credentials', 'client_credentials'],
      tokenEndpointAuthMethod: 'none',
    });
    expect(result.success).toBe(false);
    const lines = formatIssues(result.error!);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^grantTypes: must not repeat/)]));
    const ok = clientInput.safeParse({ name: 'x', grantTypes: ['authorization_code', 'client_credentials'], tokenEndpointAuthMethod: 'none' });
    const okLines = formatIssues(ok.error!);
    expect(okLines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^redirectUris: authorization_code needs/),
      expect.stringMatching(/^tokenEndpointAuthMethod: a public client/),
    ]));
    expect(formatIssues(clientInput.safeParse({ name: 'x', grantTypes: ['refresh_token'] }).error!)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^grantTypes: refresh_token needs authorization_code/)]),
    );
  });
});

describe('API rules', () => {
  it('defaults to short-lived ES256 JWTs', () => {
    expect(apiInput.parse({ identifier: 'https://api.example.com' })).toMatchObject({
      accessTokenTtl: 600, tokenFormat: 'jwt', signingAlg: 'ES256', scopes: [],
    });
  });
  it('refuses fragments, bad scopes and out-of-range TTLs', () => {
    const result = apiInput.safeParse({ identifier: 'https://api.example.com#x', scopes: ['ok', 'not ok'], accessTokenTtl: 10 });
    const lines = formatIssues(result.error!);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^identifier: must not contain a fragment/),
      expect.stringMatching(/^scopes\[1\]: not a valid scope token/),
      expect.stringMatching(/^accessTokenTtl:/),
    ]));
  });
});
