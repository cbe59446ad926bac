import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * The outbound-request guard of webhook deliveries (SSRF). As oidc-provider
 * does for back-channel logout, a delivery to a special-use address
 * (loopback, private, link-local, ...) is refused unless
 * ALLOW_PRIVATE_NETWORK_REQUESTS is on. An IP-literal host is checked before
 * connecting; a host name goes through a DNS lookup of our own in the
 * connection's dispatcher that refuses the connection when any of its
 * addresses is special-use, so the address checked is the one connected to
 * (no rebinding between check and connect).
 */

/**
 * Special-use addresses: the IANA IPv4 and IPv6 special-purpose address
 * registries (as oidc-provider refuses for its own outgoing requests,
 * lib/helpers/fetch_request.js), multicast, and the IPv6 forms that embed an
 * IPv4 address. BlockList matches IPv4-mapped IPv6 addresses (::ffff:0:0/96,
 * in any spelling) against the IPv4 rules; the other embeddings are refused
 * whole: IPv4-compatible (::/96, deprecated), IPv4-translated
 * (::ffff:0:0:0/96), NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16)
 * and Teredo (2001::/32, in 2001::/23).
 */
const SPECIAL_USE = (() => {
  const list = new BlockList();
  for (const [net, bits] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24], ['192.88.99.0', 24],
    ['192.168.0.0', 16], ['192.175.48.0', 24], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
    // multicast; reserved, with the limited broadcast address 255.255.255.255
    ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) list.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of [
    // ::/96 holds the unspecified address ::, the loopback ::1 and the IPv4-compatible addresses
    ['::', 96], ['::ffff:0:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['100:0:0:1::', 64], ['2001::', 23],
    ['2001:db8::', 32], ['2002::', 16], ['2620:4f:8000::', 48], ['3fff::', 20], ['5f00::', 16], ['fc00::', 7], ['fe80::', 10],
    // site-local (deprecated, RFC 3879) and multicast
    ['fec0::', 10], ['ff00::', 8],
  ] as const) list.addSubnet(net, bits, 'ipv6');
  return list;
})();

/** A URL's host without the brackets of an IPv6 literal. */
const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/** Whether `address` (an IP literal; anything else is not) is special-use. A zone (fe80::1%eth0) is ignored. */
export function isSpecialUseAddress(address: string): boolean {
  const ip = address.replace(/%.*$/, '');
  const family = isIP(ip);
  if (!family) return false;
  return SPECIAL_USE.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** Whether deliveries to `url` need ALLOW_PRIVATE_NETWORK_REQUESTS, as far as its host alone says (names are resolved when sending). */
export function isPrivateNetworkUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const host = hostOf(new URL(url));
  return host === 'localhost' || host.endsWith('.localhost') || isSpecialUseAddress(host);
}

class SpecialUseAddressError extends Error {
  readonly code = 'ESPECIALUSE';
  constructor(host: string, address: string) {
    super(host === address ? `${address} is a special-use address (set ALLOW_PRIVATE_NETWORK_REQUESTS=true to allow it)` : `${host} resolves to the special-use address ${address} (set ALLOW_PRIVATE_NETWORK_REQUESTS=true to allow it)`);
    this.name = 'SpecialUseAddressError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup, refusing host names with any special-use address. */
function safeLookup(hostname: string, options: object | number, callback: LookupCallback): void {
  const opts = typeof options === 'number' ? { family: options } : options;
  dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isSpecialUseAddress(a.address));
    if (bad) return callback(new SpecialUseAddressError(hostname, bad.address), []);
    if ((opts as { all?: boolean }).all) return callback(null, addresses);
    const [first] = addresses;
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

/**
 * The dispatcher for deliveries without ALLOW_PRIVATE_NETWORK_REQUESTS: an
 * undici Agent (the class behind Node's fetch, found as oidc-provider finds
 * it) whose connections resolve host names through safeLookup. Fails closed:
 * without one, nothing is sent.
 */
let ssrfDispatcher: unknown;
export function protectedDispatcher(): unknown {
  if (ssrfDispatcher) return ssrfDispatcher;
  // touching a fetch global loads Node's undici, which installs its global dispatcher
  void Response;
  const globals = globalThis as unknown as Record<symbol, { constructor: new (options: object) => unknown } | undefined>;
  const Agent = (globals[Symbol.for('undici.globalDispatcher.2')] ?? globals[Symbol.for('undici.globalDispatcher.1')])?.constructor;
  if (!Agent) throw new Error('cannot protect outgoing requests from special-use addresses on this Node version: not sent');
  ssrfDispatcher = new Agent({ connect: { lookup: safeLookup } });
  return ssrfDispatcher;
}

/**
 * The dispatcher to send to `url` with: refuses an IP-literal host that is
 * special-use before connecting, and gives the protected dispatcher, which
 * refuses host names that resolve to one.
 */
export function guardedDispatcher(url: URL): unknown {
  const host = hostOf(url);
  if (isSpecialUseAddress(host)) throw new SpecialUseAddressError(host, host);
  return protectedDispatcher();
}
