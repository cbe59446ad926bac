import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig, parseDatabaseConfig } from '../../src/config.js';

const key = () => 'k'.repeat(43);
const parse = (env: Record<string, string>) => parseConfig(env, key);

function problems(env: Record<string, string>): string[] {
  try {
    parse(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('has safe local defaults', () => {
    const config = parse({});
    expect(config).toMatchObject({
      env: 'development',
      issuer: 'http://localhost:3000',
      port: 3000,
      database: { url: 'file:./data/gatehouse.db', kind: 'sqlite' },
      cookieKeysGenerated: true,
      logLevel: 'info',
      keyEncryptionKey: undefined,
      refreshReuseGraceSeconds: 5,
    });
    expect(config.cookieKeys).toHaveLength(2);
  });

  it('reads every variable', () => {
    const kek = Buffer.alloc(32, 7).toString('base64url');
    const config = parse({
      ISSUER: 'https://id.example.com/',
      PORT: '8080',
      DATABASE_URL: 'postgresql://u@db:5432/gh',
      COOKIE_KEYS: `${'a'.repeat(32)}, ${'b'.repeat(40)}`,
      KEY_ENCRYPTION_KEY: kek,
      LOG_LEVEL: 'warn',
      TRUST_PROXY: 'true',
      CHANGE_POLL_MS: '500',
      REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    expect(config.refreshReuseGraceSeconds).toBe(0);
    expect(config.issuer).toBe('https://id.example.com');
    expect(config.port).toBe(8080);
    expect(config.database.kind).toBe('postgresql');
    expect(config.cookieKeys).toEqual(['a'.repeat(32), 'b'.repeat(40)]);
    expect(config.cookieKeysGenerated).toBe(false);
    expect(config.keyEncryptionKey?.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(config.trustProxy).toBe(true);
    expect(config.changePollMs).toBe(500);
  });

  it('lists every bad variable in one error', () => {
    const found = problems({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://x',
      ISSUER: 'not a url',
      COOKIE_KEYS: 'short',
      LOG_LEVEL: 'loud',
      KEY_ENCRYPTION_KEY: 'abc',
      TRUST_PROXY: 'maybe',
      REFRESH_REUSE_GRACE_SECONDS: '61',
    });
    for (const name of ['PORT', 'DATABASE_URL', 'ISSUER', 'COOKIE_KEYS', 'LOG_LEVEL', 'KEY_ENCRYPTION_KEY', 'TRUST_PROXY', 'REFRESH_REUSE_GRACE_SECONDS']) {
      expect(found.some((p) => p.startsWith(`${name}:`))).toBe(true);
    }
    expect(new ConfigError(found).message.split('\n')).toHaveLength(found.length + 1);
  });

  it('refuses demo or missing secrets in production, together with other problems', () => {
    const found = problems({ NODE_ENV: 'production', COOKIE_KEYS: `change-me-${'x'.repeat(40)}`, ISSUER: 'http://id.example.com', PORT: '-1' });
    expect(found).toEqual(expect.arrayContaining([
      expect.stringMatching(/^PORT:/),
      expect.stringMatching(/^COOKIE_KEYS: the demo key/),
      expect.stringMatching(/^ISSUER: must be https/),
    ]));
    expect(problems({ NODE_ENV: 'production' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^COOKIE_KEYS: required/), expect.stringMatching(/^ISSUER: required/)]),
    );
    expect(() => parse({ NODE_ENV: 'production', COOKIE_KEYS: 'z'.repeat(32), ISSUER: 'https://id.example.com', KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url') })).not.toThrow();
  });

  it('refuses production without a key-encryption key, or with a weak one, in the same one message', () => {
    const base = { NODE_ENV: 'production', COOKIE_KEYS: 'z'.repeat(32), ISSUER: 'https://id.example.com' };
    expect(problems(base)).toEqual([expect.stringMatching(/^KEY_ENCRYPTION_KEY: required when NODE_ENV=production/)]);
    for (const weak of [Buffer.alloc(32, 0), Buffer.alloc(32, 'a'), Buffer.from('password'.repeat(4))]) {
      expect(problems({ ...base, KEY_ENCRYPTION_KEY: weak.toString('base64url') })).toEqual([expect.stringMatching(/^KEY_ENCRYPTION_KEY: too weak/)]);
    }
    // the wrong size is one problem, with the others
    const both = problems({ ...base, KEY_ENCRYPTION_KEY: 'abc', ISSUER: 'http://id.example.com' });
    expect(both).toEqual(expect.arrayContaining([expect.stringMatching(/^KEY_ENCRYPTION_KEY: must be 32 bytes/), expect.stringMatching(/^ISSUER: must be https/)]));
    // development keeps working without one
    expect(parse({ COOKIE_KEYS: 'z'.repeat(32) }).keyEncryptionKey).toBeUndefined();
  });

  it('reads the branding, and refuses markup or a logo that is not https', () => {
    expect(parse({}).branding).toEqual({ name: 'Gatehouse', logoUrl: undefined, accentColor: '#2f5bd3' });
    expect(parse({ BRAND_NAME: 'Acme ID', BRAND_LOGO_URL: 'https://cdn.acme.example/logo.svg', BRAND_ACCENT_COLOR: '#AA3300' }).branding)
      .toEqual({ name: 'Acme ID', logoUrl: 'https://cdn.acme.example/logo.svg', accentColor: '#aa3300' });
    const found = problems({ BRAND_NAME: '<script>', BRAND_LOGO_URL: 'javascript:alert(1)', BRAND_ACCENT_COLOR: 'red' });
    for (const name of ['BRAND_NAME', 'BRAND_LOGO_URL', 'BRAND_ACCENT_COLOR']) expect(found.some((p) => p.startsWith(`${name}:`))).toBe(true);
  });

  it('reads the console admin email, lowercased, and refuses one that is not an address, with the other problems', () => {
    expect(parse({}).consoleAdminEmail).toBeUndefined();
    expect(parse({ CONSOLE_ADMIN_EMAIL: '' }).consoleAdminEmail).toBeUndefined();
    expect(parse({ CONSOLE_ADMIN_EMAIL: ' Ada.Lovelace@Example.COM ' }).consoleAdminEmail).toBe('ada.lovelace@example.com');
    for (const bad of ['ada', 'ada@', '@example.com', 'ada@example.com, bob@example.com', 'ada lovelace@example.com']) {
      expect(problems({ CONSOLE_ADMIN_EMAIL: bad })).toEqual(['CONSOLE_ADMIN_EMAIL: must be an email address']);
    }
    const found = problems({ CONSOLE_ADMIN_EMAIL: 'nobody', PORT: 'eighty' });
    expect(found).toEqual(expect.arrayContaining(['CONSOLE_ADMIN_EMAIL: must be an email address', expect.stringMatching(/^PORT:/)]));
  });

  it('treats empty variables as unset', () => {
    expect(parse({ PORT: '', ISSUER: '' }).port).toBe(3000);
  });

  it('parses the database alone for the CLI', () => {
    expect(parseDatabaseConfig({ DATABASE_URL: 'postgres://h/db' })).toEqual({ url: 'postgres://h/db', kind: 'postgresql' });
    expect(() => parseDatabaseConfig({ DATABASE_URL: 'mysql://h/db' })).toThrow(/DATABASE_URL/);
  });

  describe('upstreams', () => {
    it('offers only providers with credentials, in a fixed order', () => {
      expect(parse({}).upstreams).toEqual([]);
      const config = parse({
        OIDC_PROVIDERS: 'acme',
        OIDC_ACME_ISSUER: 'https://sso.acme.test/',
        OIDC_ACME_CLIENT_ID: 'a',
        OIDC_ACME_CLIENT_SECRET: 'b',
        OIDC_ACME_NAME: 'Acme SSO',
        GOOGLE_CLIENT_ID: 'g',
        GOOGLE_CLIENT_SECRET: 'gs',
        GITHUB_CLIENT_ID: 'h',
        GITHUB_CLIENT_SECRET: 'hs',
        GITHUB_BASE_URL: 'https://ghe.example.com',
        GITHUB_API_URL: 'https://ghe.example.com/api/v3',
        ACCOUNT_LINKING: 'verified-email',
      });
      expect(config.upstreams).toEqual([
        { kind: 'github', id: 'github', name: 'GitHub', clientId: 'h', clientSecret: 'hs', baseUrl: 'https://ghe.example.com', apiUrl: 'https://ghe.example.com/api/v3' },
        { kind: 'oidc', id: 'google', name: 'Google', clientId: 'g', clientSecret: 'gs', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] },
        { kind: 'oidc', id: 'acme', name: 'Acme SSO', clientId: 'a', clientSecret: 'b', issuer: 'https://sso.acme.test', scopes: ['openid', 'email', 'profile'] },
      ]);
      expect(config.linkVerifiedEmails).toBe(true);
      expect(parse({}).linkVerifiedEmails).toBe(false);
    });

    it('lists every upstream problem together', () => {
      const found = problems({
        GITHUB_CLIENT_ID: 'only-id',
        GOOGLE_CLIENT_SECRET: 'only-secret',
        GOOGLE_ISSUER: 'http://accounts.example.com',
        OIDC_PROVIDERS: 'Bad_Id,okta,github',
        OIDC_OKTA_CLIENT_ID: 'x',
        OIDC_OKTA_SCOPES: 'email',
        ACCOUNT_LINKING: 'always',
      });
      expect(found).toEqual(expect.arrayContaining([
        expect.stringMatching(/^GITHUB_CLIENT_SECRET: required/),
        expect.stringMatching(/^GOOGLE_CLIENT_ID: required/),
        expect.stringMatching(/^OIDC_PROVIDERS: "Bad_Id"/),
        expect.stringMatching(/^OIDC_PROVIDERS: "github"/),
        expect.stringMatching(/^OIDC_OKTA_ISSUER: required/),
        expect.stringMatching(/^OIDC_OKTA_CLIENT_SECRET: required/),
        expect.stringMatching(/^OIDC_OKTA_SCOPES: must include openid/),
        expect.stringMatching(/^ACCOUNT_LINKING:/),
      ]));
    });

    it('accepts http only for upstreams on this machine', () => {
      const ok = parse({ GOOGLE_CLIENT_ID: 'g', GOOGLE_CLIENT_SECRET: 's', GOOGLE_ISSUER: 'http://127.0.0.1:4000' });
      expect(ok.upstreams[0]).toMatchObject({ issuer: 'http://127.0.0.1:4000' });
      expect(problems({ GOOGLE_CLIENT_ID: 'g', GOOGLE_CLIENT_SECRET: 's', GOOGLE_ISSUER: 'http://idp.example.com' })).toEqual([
        'GOOGLE_ISSUER: must be https (http only for localhost)',
      ]);
    });
  });
});
