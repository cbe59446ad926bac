import { decryptJwk, encryptJwk, generateJwk } from '../../src/services/keys.js';

describe('signing keys', () => {
  it('generates private JWKs with a thumbprint kid', async () => {
    const es = await generateJwk('ES256');
    expect(es).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(es.d).toEqual(expect.any(String));
    expect(es.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rs = await generateJwk('RS256');
    expect(rs).toMatchObject({ kty: 'RSA', alg: 'RS256' });
  });

  it('encrypts keys at rest with AES-256-GCM and detects tampering or a wrong key', async () => {
    const jwk = await generateJwk('ES256');
    const kek = Buffer.alloc(32, 1);
    const sealed = encryptJwk(jwk, kek);
    expect(sealed).not.toContain(jwk.d);
    expect(decryptJwk(sealed, kek)).toEqual(jwk);
    expect(() => decryptJwk(sealed, Buffer.alloc(32, 2))).toThrow();
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => decryptJwk(parts.join('.'), kek)).toThrow();
  });
});
