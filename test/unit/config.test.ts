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
    });
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
    });
    for (const name of ['PORT', 'DATABASE_URL', 'ISSUER', 'COOKIE_KEYS', 'LOG_LEVEL', 'KEY_ENCRYPTION_KEY', 'TRUST_PROXY']) {
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
    expect(() => parse({ NODE_ENV: 'production', COOKIE_KEYS: 'z'.repeat(32), ISSUER: 'https://id.example.com' })).not.toThrow();
  });

  it('treats empty variables as unset', () => {
    expect(parse({ PORT: '', ISSUER: '' }).port).toBe(3000);
  });

  it('parses the database alone for the CLI', () => {
    expect(parseDatabaseConfig({ DATABASE_URL: 'postgres://h/db' })).toEqual({ url: 'postgres://h/db', kind: 'postgresql' });
    expect(() => parseDatabaseConfig({ DATABASE_URL: 'mysql://h/db' })).toThrow(/DATABASE_URL/);
  });
});
