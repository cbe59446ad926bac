import { isPrivateNetworkUrl, isSpecialUseAddress } from '../../src/services/webhooks/outbound.js';

/**
 * The addresses webhooks are never sent to (without ALLOW_PRIVATE_NETWORK_REQUESTS):
 * the IANA special-purpose registries, multicast, and every IPv6 spelling that
 * carries an IPv4 address. A receiver's host name is refused when any of its
 * addresses is one of these, so this list is the whole SSRF rule.
 */

describe('special-use addresses (the webhook SSRF guard)', () => {
  it.each([
    // IPv4 special-purpose registry
    '0.0.0.0', '0.1.2.3', '10.0.0.1', '100.64.0.1', '100.127.255.254', '127.0.0.1', '127.255.255.255', '169.254.169.254',
    '172.16.0.1', '172.31.255.255', '192.0.0.8', '192.0.2.1', '192.31.196.1', '192.52.193.1', '192.88.99.1', '192.168.1.1',
    '192.175.48.1', '198.18.0.1', '198.19.255.255', '198.51.100.1', '203.0.113.1', '240.0.0.1', '255.255.255.255',
    // IPv4 multicast
    '224.0.0.1', '232.1.2.3', '239.255.255.250',
    // IPv6: unspecified, loopback, and the IPv4-compatible ::/96 (any IPv4 address in it, public ones too)
    '::', '::1', '::127.0.0.1', '::a00:1', '::8.8.8.8', '0:0:0:0:0:0:808:808',
    // IPv4-mapped: the IPv4 rules, in every spelling
    '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '::FFFF:10.0.0.1', '::ffff:169.254.169.254', '::ffff:224.0.0.1', '::ffff:100.64.0.1',
    // IPv4-translated (::ffff:0:0:0/96)
    '::ffff:0:7f00:1', '::ffff:0:808:808',
    // NAT64, well-known and local-use prefixes (private IPv4 inside, and any other)
    '64:ff9b::10.0.0.1', '64:ff9b::7f00:1', '64:ff9b::169.254.169.254', '64:ff9b::8.8.8.8', '64:ff9b:1::a00:1',
    // discard-only, dummy, IETF protocol assignments (Teredo in it), documentation, 6to4, AS112, SRv6
    '100::1', '100:0:0:1::1', '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:db8::1', '2002:a00:1::1', '2002:808:808::1',
    '2620:4f:8000::1', '3fff::1', '5f00::1',
    // unique local, link-local (with a zone too), site-local (deprecated)
    'fc00::1', 'fd12:3456:789a::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fec0::1', 'feff::1',
    // IPv6 multicast
    'ff02::1', 'ff05::1:3', 'ff0e::101', 'FF02::2',
  ])('refuses %s', (address) => {
    expect(isSpecialUseAddress(address)).toBe(true);
  });

  it.each([
    '8.8.8.8', '1.1.1.1', '93.184.215.14', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.0.1.1',
    '198.17.255.255', '198.20.0.0', '223.255.255.255', '11.0.0.1', '169.253.0.1',
    // IPv4-mapped public addresses go by the IPv4 rules
    '::ffff:8.8.8.8', '::ffff:808:808',
    '2001:4860:4860::8888', '2606:4700:4700::1111', '2a00:1450:4001:82b::200e', '2001:200::1', '3ffe::1', 'fbff::1', '2620:4f:7fff::1',
  ])('allows %s', (address) => {
    expect(isSpecialUseAddress(address)).toBe(false);
  });

  it('is only about IP literals: host names and garbage are not addresses', () => {
    for (const text of ['example.com', 'localhost', '', '1.2.3', '::g', '10.0.0.1.example.com']) expect(isSpecialUseAddress(text)).toBe(false);
  });

  it('judges a URL by its host, with the bracketed IPv6 literals URLs have', () => {
    expect(isPrivateNetworkUrl('https://[::ffff:7f00:1]/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://[::a00:1]/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://[ff02::1]/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://224.0.0.1/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://[64:ff9b::a00:1]/hook')).toBe(true);
    // WHATWG URLs normalise IPv4 spellings (hex, octal, one number) before we see them
    expect(isPrivateNetworkUrl('https://0x7f000001/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://2130706433/hook')).toBe(true);
    expect(isPrivateNetworkUrl('https://hooks.example.com/hook')).toBe(false);
    expect(isPrivateNetworkUrl('https://[2001:4860:4860::8888]/hook')).toBe(false);
  });
});
