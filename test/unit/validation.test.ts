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
      jwks: null,
      jwksUri: null,
      profile: 'default',
      scopes: [],
      resources: [],
      firstParty: false,
      postLogoutRedirectUris: [],
      backchannelLogoutUri: null,
      requirePar: false,
      pkce: 'required',
    });
  });

  it('lets only a confidential client outside fapi2 make PKCE optional', () => {
    const web = { name: 'web', grantTypes: ['authorization_code'], redirectUris: ['https://app.example.com/cb'] };
    expect(clientInput.parse({ ...web, pkce: 'optional' }).pkce).toBe('optional');
    const publicClient = clientInput.safeParse({ ...web, tokenEndpointAuthMethod: 'none', pkce: 'optional' });
    expect(publicClient.success).toBe(false);
    expect(publicClient.error!.issues).toEqual([expect.objectContaining({ path: ['pkce'], message: 'a public client (none) must use PKCE' })]);
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] };
    const fapi = clientInput.safeParse({ ...web, tokenEndpointAuthMethod: 'private_key_jwt', jwks, profile: 'fapi2', pkce: 'optional' });
    expect(fapi.error!.issues).toEqual([expect.objectContaining({ path: ['pkce'], message: 'the fapi2 profile requires PKCE' })]);
    expect(clientInput.safeParse({ ...web, pkce: 'sometimes' }).success).toBe(false);
  });

  it('takes public keys for private_key_jwt and refuses private ones, incomplete ones and stray ones', () => {
    const ec = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' };
    const problems = (fields: Record<string, unknown>) => {
      const r = clientInput.safeParse({ name: 'svc', ...fields });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ec] } })).toEqual([]);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'https://svc.example.com/jwks' })).toEqual([]);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ ...ec, d: 'secret' }] } })).toEqual(['jwks.keys.0.d: must be a public key: remove "d" (never share a private key)']);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } })).toEqual(['jwks.keys.0.kty: must be RSA, EC or OKP (a public key)']);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', e: 'AQAB' }] } })).toEqual(['jwks.keys.0.n: a RSA key needs "n"']);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [] } })).toEqual(['jwks.keys: must hold at least one key']);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt' })).toEqual(["jwks: private_key_jwt needs the client's public keys: jwks or jwksUri"]);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ec] }, jwksUri: 'https://svc.example.com/jwks' })).toEqual(['jwksUri: give jwks or jwksUri, not both']);
    expect(problems({ jwksUri: 'https://svc.example.com/jwks' })).toEqual(['jwksUri: jwks and jwksUri are only used with private_key_jwt']);
    expect(problems({ tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'http://svc.example.com/jwks' })).toEqual([
      'jwksUri: must use https (http only for localhost, 127.0.0.1 or [::1]): http://svc.example.com/jwks',
    ]);
    expect(problems({ profile: 'fapi2' })).toEqual(['tokenEndpointAuthMethod: the fapi2 profile allows only private_key_jwt']);
    expect(problems({ profile: 'fapi1' })[0]).toMatch(/^profile: /);
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

describe('client ids', () => {
  const problems = (clientId: string) => {
    const r = clientInput.safeParse({ name: 'svc', clientId });
    return r.success ? [] : formatIssues(r.error);
  };

  it.each(['billing-service', 'a', 'svc.v2~x_y', 'x-', 'a--b', '0abc'])('accepts %s', (id) => {
    expect(problems(id)).toEqual([]);
  });

  it.each(['-rf', '--help', '-', '--', '-v1'])('refuses %s, which a command line would read as a flag', (id) => {
    expect(problems(id)).toEqual(['clientId: must not start with "-" (a command line would read it as a flag)']);
  });

  it.each(['.', '..'])('refuses %s, which a URL path would read as a dot segment', (id) => {
    expect(problems(id)).toEqual(['clientId: must not be "." or ".." (a URL path would read it as a dot segment: /admin/v1/clients/.. is /admin/v1)']);
  });

  it.each(['...', '.a', 'a.', '.well-known'])('accepts %s, which is no dot segment', (id) => {
    expect(problems(id)).toEqual([]);
  });

  it('keeps the same rule for the ids an API lets introspect', () => {
    const r = apiInput.safeParse({ identifier: 'https://api.example.com', introspectors: ['ok', '--help'] });
    expect(formatIssues(r.error!)).toEqual(['introspectors[1]: must not start with "-" (a command line would read it as a flag)']);
  });
});

describe('API identifiers', () => {
  const problems = (identifier: string) => {
    const r = apiInput.safeParse({ identifier });
    return r.success ? [] : formatIssues(r.error);
  };

  it.each([
    'https://api.example.com', 'https://api.example.com/v1', 'http://localhost:4000', 'http://127.0.0.1/api', 'http://[::1]:8080/',
    'urn:example:orders', 'urn:ietf:params:oauth:example', 'URN:isbn:0451450523',
  ])('accepts %s', (identifier) => {
    expect(problems(identifier)).toEqual([]);
  });

  it.each([
    ['javascript:alert(1)', 'identifier: must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>): javascript:alert(1)'],
    ['data:text/html,hi', 'identifier: must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>): data:text/html,hi'],
    ['ftp://files.example.com', 'identifier: must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>): ftp://files.example.com'],
    ['api://orders', 'identifier: must be an https URI (http only for localhost, 127.0.0.1 or [::1]) or a URN (urn:<namespace>:<name>): api://orders'],
    ['http://api.example.com', 'identifier: must use https (http only for localhost, 127.0.0.1 or [::1]): http://api.example.com'],
    ['http://localhost.evil.com', 'identifier: must use https (http only for localhost, 127.0.0.1 or [::1]): http://localhost.evil.com'],
    ['https:api.example.com', 'identifier: not an absolute URI: https:api.example.com'],
    ['https://api.example.com/#x', 'identifier: must not contain a fragment: https://api.example.com/#x'],
    ['urn:example:orders#x', 'identifier: must not contain a fragment: urn:example:orders#x'],
    ['urn:', 'identifier: a URN must be urn:<namespace>:<name>: urn:'],
    ['urn:orders', 'identifier: a URN must be urn:<namespace>:<name>: urn:orders'],
    ['https://user:pw@api.example.com', 'identifier: must not contain credentials: https://user:pw@api.example.com'],
    ['payments', 'identifier: not an absolute URI: payments'],
    ['https://api.example.com/v1?x=1', 'identifier: must not have a query: https://api.example.com/v1?x=1'],
    ['HTTPS://API.example.com', 'identifier: must be written in its normal form (https://api.example.com/): HTTPS://API.example.com'],
  ])('refuses %s with its path', (identifier, message) => {
    expect(problems(identifier)).toEqual([message]);
  });
});

describe('names and API identifiers an outsider tried (issue 17)', () => {
  it('refuses control characters in display names: they would act in an operator terminal', async () => {
    const { clientFields, apiInput } = await import('../../src/services/validation.js');
    expect(clientFields.safeParse({ name: '\u001b]0;PWNED\u0007\u001b[2JEVIL' }).success).toBe(false);
    expect(clientFields.safeParse({ name: 'a\u0001b' }).success).toBe(false);
    expect(clientFields.safeParse({ name: '  Ünïcödé app ✓ ' }).success).toBe(true);
    expect(apiInput.safeParse({ identifier: 'https://x.example', name: 'line\nbreak' }).success).toBe(false);
  });

  it('takes an API identifier only in its normal form, without a query, and at most 2048 characters', async () => {
    const { apiInput } = await import('../../src/services/validation.js');
    const ok = (identifier: string) => apiInput.safeParse({ identifier }).success;
    expect(ok('https://orders.example.com')).toBe(true);
    expect(ok('https://orders.example.com/v1/items')).toBe(true);
    expect(ok('HTTPS://ORDERS.EXAMPLE.COM')).toBe(false);
    expect(ok('https://orders.example.com/admin/./v1')).toBe(false);
    expect(ok('https://orders.example.com/v1?x=1')).toBe(false);
    expect(ok(`https://${'a'.repeat(3000)}.com`)).toBe(false);
  });
});

describe('CLI output', () => {
  it('shows control characters instead of obeying them, keeping newlines and tabs', async () => {
    const { printable } = await import('../../src/cli/context.js');
    expect(printable('a\u001b[2Jb\u0007\tc\nd\u009b')).toBe('a\\x1b[2Jb\\x07\tc\nd\\x9b');
  });
});
