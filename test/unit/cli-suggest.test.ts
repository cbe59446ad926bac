import { editDistance, nearest } from '../../src/cli/suggest.js';
import { MIN_REVOKE_PREFIX } from '../../src/cli/registration-tokens.js';
import { MIN_REVOKE_PREFIX as SERVICE_MIN_REVOKE_PREFIX } from '../../src/services/registration-tokens.js';

describe('the CLI\'s "did you mean"', () => {
  it.each([
    ['clients', 'clients', 0], ['clinets', 'clients', 1], ['lsit', 'list', 1], ['nmae', 'name', 1], ['colour', 'scope', 5], ['', 'list', 4],
  ])('edit distance of %s and %s is %i (a swap counts once)', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });

  const commands = ['clients', 'resources', 'apis', 'accounts', 'consents', 'grants', 'keys', 'registration-tokens', 'audit', 'webhooks', 'seed', 'migrate'];
  it.each([
    ['clinets', 'clients'], ['Clients', 'clients'], ['resource', 'resources'], ['key', 'keys'], ['reg', 'registration-tokens'], ['webhook', 'webhooks'], ['migarte', 'migrate'],
    ['frobnicate', undefined], ['x', undefined], ['constructor', undefined], ['a'.repeat(500), undefined],
  ])('%s -> %s', (typed, expected) => {
    expect(nearest(typed, commands)).toBe(expected);
  });
});

it('the CLI help names the service\'s shortest revocable prefix', () => {
  expect(MIN_REVOKE_PREFIX).toBe(SERVICE_MIN_REVOKE_PREFIX);
});
