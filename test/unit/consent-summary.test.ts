import { consentSummary, requestedClaims, SCOPE_TEXT, type ConsentSummaryInput } from '../../src/interactions/consent-summary.js';
import { OIDC_SCOPES } from '../../src/common/protocol.js';

/** What the consent page lists and marks new (interactions/consent-summary.ts). */

const THINGS = 'https://things.example.com';
const ORDERS = 'https://orders.example.com';
const things = { identifier: THINGS, name: 'Things API', available: ['read:things', 'write:things'] };
const orders = { identifier: ORDERS, name: 'Orders API', available: ['read:orders'] };

function input(fields: Partial<ConsentSummaryInput>): ConsentSummaryInput {
  return { scope: undefined, oidcScopes: OIDC_SCOPES, apis: [], missing: {}, ...fields };
}

/** Each line as "value" or "value*" when new, scopes then claims then "API: scope" lines. */
function lines(input: ConsentSummaryInput): string[] {
  const s = consentSummary(input);
  const mark = (i: { value: string; isNew: boolean }) => `${i.value}${i.isNew ? '*' : ''}`;
  return [
    ...s.scopes.map(mark),
    ...s.claims.map((c) => `claim ${mark(c)}`),
    ...s.apis.flatMap((a) => (a.scopes.length ? a.scopes.map((sc) => `${a.name}: ${mark(sc)}`) : [`${a.name}`])),
  ];
}

describe('consentSummary', () => {
  it('first consent: everything requested is listed, all new, with the page wording', () => {
    const i = input({
      scope: 'openid email profile offline_access',
      missing: { missingOIDCScope: ['openid', 'email', 'profile', 'offline_access'] },
    });
    expect(lines(i)).toEqual(['openid*', 'email*', 'profile*', 'offline_access*']);
    const summary = consentSummary(i);
    expect(summary.scopes.map((s) => s.text)).toEqual([SCOPE_TEXT.openid, SCOPE_TEXT.email, SCOPE_TEXT.profile, SCOPE_TEXT.offline_access]);
    expect(summary.scopes[1].text).toBe('See your email address');
    expect(summary.anyNew).toBe(true);
  });

  it('re-consent (prompt=consent) with nothing new still lists everything, none new', () => {
    const i = input({
      scope: 'openid email profile offline_access read:things',
      apis: [things],
      granted: { oidcScopes: ['openid', 'profile', 'email', 'offline_access'], claims: [], resourceScopes: { [THINGS]: ['read:things'] } },
      missing: {},
    });
    expect(lines(i)).toEqual(['openid', 'email', 'profile', 'offline_access', 'Things API: read:things']);
    expect(consentSummary(i).anyNew).toBe(false);
  });

  it('re-consent asking for more: everything listed, only the extra marked new', () => {
    const i = input({
      scope: 'openid email profile read:things write:things',
      apis: [things],
      granted: { oidcScopes: ['openid', 'email'], claims: [], resourceScopes: { [THINGS]: ['read:things'] } },
      missing: { missingOIDCScope: ['profile'], missingResourceScopes: { [THINGS]: ['write:things'] } },
    });
    expect(lines(i)).toEqual(['openid', 'email', 'profile*', 'Things API: read:things', 'Things API: write:things*']);
    expect(consentSummary(i).anyNew).toBe(true);
  });

  it('mixes OIDC and API scopes over several APIs, in request order, each API only with the scopes it offers', () => {
    const i = input({
      scope: 'read:orders email openid write:things read:things',
      apis: [things, orders],
      granted: { oidcScopes: ['openid'], claims: [], resourceScopes: { [ORDERS]: ['read:orders'] } },
      missing: { missingOIDCScope: ['email'], missingResourceScopes: { [THINGS]: ['write:things', 'read:things'] } },
    });
    expect(lines(i)).toEqual(['email*', 'openid', 'Things API: write:things*', 'Things API: read:things*', 'Orders API: read:orders']);
    const summary = consentSummary(i);
    expect(summary.apis.map((a) => [a.identifier, a.name])).toEqual([[THINGS, 'Things API'], [ORDERS, 'Orders API']]);
  });

  it('lists nothing the app does not get: unknown scopes, scopes an API does not offer, rejected scopes, other grants', () => {
    const i = input({
      // write:things granted earlier (a first-party grant adds every requested scope to the API) but no longer offered
      scope: 'openid email write:things delete:everything',
      apis: [{ ...things, available: ['read:things'] }],
      granted: { oidcScopes: ['openid', 'profile'], claims: [], resourceScopes: { [THINGS]: ['write:things'], [ORDERS]: ['read:orders'] } },
      // email neither granted nor missing (rejected before): the app does not get it
      missing: {},
    });
    expect(lines(i)).toEqual(['openid', 'Things API']);
  });

  it('without an existing grant, OIDC and API scopes are all new', () => {
    const i = input({ scope: 'openid read:things', apis: [things], missing: { missingOIDCScope: ['openid'], missingResourceScopes: { [THINGS]: ['read:things'] } } });
    expect(lines(i)).toEqual(['openid*', 'Things API: read:things*']);
  });

  it('claims asked for with the claims parameter are listed, new when missing', () => {
    const i = input({
      scope: 'openid',
      claims: JSON.stringify({ userinfo: { email: null, sub: null }, id_token: { name: { essential: true }, picture: null } }),
      granted: { oidcScopes: ['openid'], claims: ['name'], resourceScopes: {} },
      missing: { missingOIDCClaims: ['email'] },
    });
    expect(lines(i)).toEqual(['openid', 'claim email*', 'claim name']);
  });
});

describe('requestedClaims', () => {
  it('reads userinfo and id_token members, without the claims that never need consent', () => {
    expect(requestedClaims(JSON.stringify({ userinfo: { email: null, sub: null }, id_token: { email: null, name: { essential: true }, acr: null } })))
      .toEqual(['email', 'name']);
  });
  it('ignores what oidc-provider ignores', () => {
    expect(requestedClaims(undefined)).toEqual([]);
    expect(requestedClaims('not json')).toEqual([]);
    expect(requestedClaims(JSON.stringify({ userinfo: { email: 'yes', name: [1] } }))).toEqual([]);
  });
});
