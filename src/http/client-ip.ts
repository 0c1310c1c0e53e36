import { BlockList, isIP } from 'node:net';

/**
 * Who is calling, as an IP address (SPEC §12: rate limits and the audit log use the client IP
 * behind GATEHOUSE_TRUSTED_PROXIES).
 *
 * - No trusted proxies (the default): the socket address, and X-Forwarded-For is ignored.
 * - The socket peer is a trusted proxy: walk X-Forwarded-For from the right (each proxy appends
 *   the address it received from); the client is the right-most address that is not a trusted
 *   proxy. Everything left of it was written by the client and is never believed.
 * - An X-Forwarded-For from a peer that is not a trusted proxy is ignored.
 */
export type ClientIpResolver = (socketAddress: string | null, forwardedFor: string | undefined) => string | null;

/**
 * One spelling per address, so that one client is one rate-limit bucket and one audit value:
 * an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, `::ffff:a00:1`: a dual-stack socket's spelling
 * of IPv4) is the dotted IPv4; IPv6 is the compressed lower-case form of RFC 5952
 * (`2001:DB8:0::1` → `2001:db8::1`). A zone (`fe80::1%eth0`) is kept, lower-cased. Anything that
 * is not an address is returned lower-cased.
 */
export function normalizeIp(ip: string): string {
  const [address, zone] = splitZone(ip.trim());
  if (isIP(address) !== 6) return ip.trim().toLowerCase();
  const compressed = new URL(`http://[${address}]/`).hostname.slice(1, -1); // WHATWG URL serialises IPv6 per RFC 5952
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return zone === null ? compressed : `${compressed}%${zone.toLowerCase()}`;
}

function splitZone(ip: string): [string, string | null] {
  const i = ip.indexOf('%');
  return i < 0 ? [ip, null] : [ip.slice(0, i), ip.slice(i + 1)];
}

/**
 * The rate-limit bucket of a client address (every `…:ip` limit, and the per-account-and-IP
 * limits): an IPv4 address is its own bucket; an IPv6 address counts as its /64, because one
 * subscriber or one server usually holds a whole /64 and would otherwise get a fresh budget
 * per address (2^64 of them). `null` (no socket address) is one shared bucket, `unknown`.
 */
export function ipBucket(ip: string | null): string {
  if (ip === null) return 'unknown';
  const [address] = splitZone(normalizeIp(ip));
  if (isIP(address) !== 6) return address;
  const groups = expandIpv6(address).slice(0, 4);
  return `${normalizeIp(`${groups.join(':')}::`)}/64`;
}

/** The eight 16-bit groups of a compressed IPv6 address (normalizeIp's output), as hex without leading zeros. */
function expandIpv6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => parseInt(g, 16).toString(16));
}

/** One X-Forwarded-For entry as an address: bare, `[v6]`, `[v6]:port` or `v4:port`; null when it is not an address. */
function forwardedAddress(entry: string): string | null {
  let s = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s);
  if (bracketed) s = bracketed[1]!;
  else {
    const v4port = /^(\d+\.\d+\.\d+\.\d+):\d{1,5}$/.exec(s);
    if (v4port) s = v4port[1]!;
  }
  return isIP(s) ? normalizeIp(s) : null;
}

/** Build the resolver from the validated `address/prefix` list in Config.trustedProxies. */
export function clientIpResolver(trustedProxies: readonly string[]): ClientIpResolver {
  if (trustedProxies.length === 0) return (socket) => (socket ? normalizeIp(socket) : null);
  const list = new BlockList();
  for (const cidr of trustedProxies) {
    const [address, prefix] = cidr.split('/') as [string, string];
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  const trusted = (ip: string) => list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  return (socket, forwardedFor) => {
    if (!socket) return null;
    let hop = normalizeIp(socket);
    if (!isIP(hop) || !trusted(hop) || !forwardedFor) return hop;
    const entries = forwardedFor.split(',');
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = forwardedAddress(entries[i]!);
      // A trusted proxy passed on something that is not an address: it is the best we know.
      if (address === null) return hop;
      if (!trusted(address)) return address;
      hop = address;
    }
    return hop; // every hop is a trusted proxy: the left-most one is the origin
  };
}
