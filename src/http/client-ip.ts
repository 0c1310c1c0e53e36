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

/** `::ffff:10.0.0.1` (a dual-stack socket's spelling of IPv4) is 10.0.0.1. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip.toLowerCase();
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
