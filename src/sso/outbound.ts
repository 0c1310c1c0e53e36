import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/**
 * The one HTTP client for every request Gatehouse makes to a URL a customer typed in (OIDC
 * discovery, JWKS, token endpoint, UserInfo, SAML metadata). Those URLs are attacker-controlled,
 * so this is an SSRF guard first and an HTTP client second (SPEC §4.3):
 *
 * - https only; the address must be public unicast — never loopback, private, link-local, cloud
 *   metadata, CGNAT, multicast… nor an IPv4-mapped IPv6 spelling of one of those.
 * - The check runs on the addresses the name resolves to, inside the `lookup` the socket itself
 *   uses, so the address checked is the address dialed (no window for DNS rebinding). Node never
 *   calls `lookup` for IP literals, so those are checked before the request.
 * - Connections are pooled (keep-alive), one pool per origin, bounded, closed when idle. The
 *   pool's agents open every socket through that same guarded `lookup` (GuardedHttpAgent), so a
 *   pooled connection is one to an address that was checked when it was opened, and every new
 *   connection resolves and checks afresh — a name that re-resolves to a refused address gets no
 *   new connection.
 * - Redirects are followed by hand, at most 5, and every hop goes through the same checks.
 * - 5 s for the whole exchange (all hops, DNS included) and a 1 MiB body cap.
 *
 * `allowLoopback` (GATEHOUSE_ALLOW_LOOPBACK_IDPS, local testing only) allows http:// and
 * loopback, private and CGNAT addresses. Cloud metadata, link-local and the other special
 * ranges stay refused even then: no local IdP lives there, and they are what an attacker wants.
 */

export type OutboundFailure =
  | 'invalid_url'
  | 'not_https'
  | 'blocked_address'
  | 'dns_failed'
  | 'unreachable'
  | 'timeout'
  | 'too_large'
  | 'too_many_redirects'
  | 'bad_redirect';

export class OutboundError extends Error {
  override name = 'OutboundError';
  constructor(
    readonly reason: OutboundFailure,
    /** The URL being requested when it failed — for a redirect hop, the redirect target. */
    readonly url: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * SPEC §12: an SSRF refusal says this, never which address a name resolved to nor what kind
 * it is — otherwise the refusal is a DNS oracle into the internal network for any organization
 * owner ("resolves to 10.20.0.7, a private address"). The operator finds the detail in the log
 * at debug level (OutboundOptions.onRefused).
 */
export const REFUSED_ADDRESS = 'a private or reserved address';

/** What the guard refused, for the operator's log only (never for an answer or an audit entry). */
export interface RefusedAddress {
  url: string;
  host: string;
  address: string;
  /** "a loopback address", "a cloud metadata address"… */
  why: string;
}

export interface OutboundRequest {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface OutboundResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Final URL after redirects. */
  url: string;
  body: string;
  /** The body parsed as JSON; throws a SyntaxError with message 'not JSON' otherwise. */
  json(): unknown;
}

export type LookupFn = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

export interface OutboundOptions {
  allowLoopback: boolean;
  /** Budget for the whole exchange, redirects and DNS included. Default 5000. */
  timeoutMs?: number;
  /** Largest body accepted. Default 1 MiB. */
  maxBytes?: number;
  /** Name resolution. Default: dns.promises.lookup(host, { all: true }). */
  lookup?: LookupFn;
  /** Default 5. */
  maxRedirects?: number;
  /** PEM certificates trusted in addition to Node's bundled roots (tests, IdPs on a private CA). */
  extraCaCerts?: string[];
  /** Told the detail of every refused address (server.ts logs it at debug level). */
  onRefused?: (refused: RefusedAddress) => void;
  /** Most connections open at once to one origin; further requests wait for one. Default 8. */
  maxSocketsPerOrigin?: number;
  /** An idle pooled connection is closed after this long (or sooner when the server says so). Default 15000. */
  idleSocketTimeoutMs?: number;
}

export type OutboundFetch = (url: string, request?: OutboundRequest) => Promise<OutboundResponse>;

/** The client createOutboundFetch builds: the fetch, and `close()` to end its pooled connections. */
export type OutboundClient = OutboundFetch & { close(): void };

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_REDIRECTS = 5;
export const DEFAULT_MAX_SOCKETS_PER_ORIGIN = 8;
export const DEFAULT_IDLE_SOCKET_TIMEOUT_MS = 15_000;
/** Bounds the pool across all origins (one client's connections, busy and idle). */
const MAX_TOTAL_SOCKETS = 128;
/** Idle connections kept per origin. */
const MAX_FREE_SOCKETS_PER_ORIGIN = 4;

// ---------------------------------------------------------------------------------------------
// Address policy
// ---------------------------------------------------------------------------------------------

/**
 * Why an address is refused. `loopback`, `private` and `shared` are the kinds allowLoopback
 * relaxes; every other kind is refused whatever the configuration.
 */
type AddressKind =
  | 'metadata'
  | 'loopback'
  | 'private'
  | 'shared'
  | 'link-local'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'tunnel'
  | 'reserved'
  | 'not-an-ip';

const RELAXED_BY_ALLOW_LOOPBACK: ReadonlySet<AddressKind> = new Set(['loopback', 'private', 'shared']);

interface Refusal {
  kind: AddressKind;
  /** Completes "idp.example.com resolves to 10.0.0.5, …". */
  label: string;
}

/**
 * IPv4 lives in the IPv4-mapped block ::ffff:0:0/96, so 127.0.0.1 and ::ffff:127.0.0.1 are the
 * same 128-bit number: one table covers an address and its mapped spelling, with no chance of
 * a mapped form slipping past a rule written for IPv4.
 */
const V4_MAPPED = 0xffffn << 32n;

const LABELS: Record<AddressKind, string> = {
  metadata: 'a cloud metadata address',
  loopback: 'a loopback address',
  private: 'a private address',
  shared: 'a carrier-grade NAT (shared) address',
  'link-local': 'a link-local address',
  unspecified: 'an unspecified address',
  multicast: 'a multicast address',
  broadcast: 'a broadcast address',
  documentation: 'a documentation address',
  tunnel: 'a tunnel address that embeds an IPv4 address',
  reserved: 'a reserved address',
  'not-an-ip': 'not an IP address',
};

/** First match wins, so the specific entries (metadata, broadcast) come before their blocks. */
const RANGES: ReadonlyArray<readonly [cidr: string, kind: AddressKind]> = [
  // Cloud metadata and platform endpoints. Most sit inside a block refused anyway; listing them
  // keeps them refused under allowLoopback and names them in the error.
  ['169.254.169.254/32', 'metadata'], // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack…
  ['169.254.170.2/32', 'metadata'], // AWS ECS task metadata
  ['169.254.170.23/32', 'metadata'], // AWS EKS Pod Identity
  ['169.254.0.23/32', 'metadata'], // Tencent Cloud
  ['100.100.100.200/32', 'metadata'], // Alibaba Cloud (inside CGNAT, which allowLoopback relaxes)
  ['168.63.129.16/32', 'metadata'], // Azure WireServer — a *public* address, reachable only from Azure VMs
  ['192.0.0.192/32', 'metadata'], // Oracle Cloud
  ['fd00:ec2::254/128', 'metadata'], // AWS IMDS over IPv6 (inside fc00::/7)
  ['fd00:ec2::23/128', 'metadata'], // AWS EKS Pod Identity over IPv6
  ['fd20:ce::254/128', 'metadata'], // GCP metadata over IPv6
  // IPv4 (written as dotted quads; stored mapped).
  ['0.0.0.0/8', 'unspecified'], // "this network"; connecting to 0.0.0.0 reaches the local host
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'], // deprecated 6to4 relay anycast
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'], // benchmarking
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
  // IPv6. Anything outside 2000::/3 is refused after this table (see refusalFor).
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b::/96', 'tunnel'], // NAT64: would reach the embedded IPv4 address
  ['64:ff9b:1::/48', 'tunnel'], // local-use NAT64
  ['2001::/32', 'tunnel'], // Teredo
  ['2001:db8::/32', 'documentation'],
  ['2001::/23', 'reserved'], // IETF protocol assignments
  ['2002::/16', 'tunnel'], // 6to4
  ['3fff::/20', 'documentation'],
  ['fc00::/7', 'private'], // unique local
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
];

interface ParsedRange {
  base: bigint;
  prefix: number;
  kind: AddressKind;
}

const PARSED_RANGES: readonly ParsedRange[] = RANGES.map(([cidr, kind]) => {
  const [ip = '', bits = ''] = cidr.split('/');
  const base = parseAddress(ip);
  if (base === null) throw new Error(`bad range ${cidr}`);
  // An IPv4 prefix counts from the start of the mapped block.
  const prefix = Number(bits) + (net.isIPv4(ip) ? 96 : 0);
  return { base, prefix, kind };
});

function inRange(address: bigint, range: ParsedRange): boolean {
  const shift = BigInt(128 - range.prefix);
  return address >> shift === range.base >> shift;
}

/** An IP address as a 128-bit number (IPv4 as IPv4-mapped), or null when it is not one. */
function parseAddress(ip: string): bigint | null {
  if (net.isIPv4(ip)) return V4_MAPPED | parseIPv4(ip);
  // A zone index ("fe80::1%eth0") is only meaningful on link-local addresses and changes what
  // is dialed; no public address carries one, so treat it as not an address at all.
  if (ip.includes('%') || !net.isIPv6(ip)) return null;
  return parseIPv6(ip);
}

/** Assumes net.isIPv4 accepted it: four decimal octets, no leading zeros. */
function parseIPv4(ip: string): bigint {
  return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

/** Assumes net.isIPv6 accepted it. Expands "::" and a trailing dotted quad. */
function parseIPv6(ip: string): bigint {
  const groupsOf = (part: string): bigint[] => {
    if (part === '') return [];
    const out: bigint[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = parseIPv4(piece);
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else {
        out.push(BigInt(parseInt(piece, 16)));
      }
    }
    return out;
  };
  const [head = '', tail] = ip.split('::');
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  const zeros = new Array<bigint>(8 - left.length - right.length).fill(0n);
  return [...left, ...zeros, ...right].reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Global unicast 2000::/3, the only IPv6 block with public addresses. */
const GLOBAL_UNICAST: ParsedRange = { base: 0x2n << 124n, prefix: 3, kind: 'reserved' };
const V4_MAPPED_BLOCK: ParsedRange = { base: V4_MAPPED, prefix: 96, kind: 'reserved' };

function refusalFor(ip: string): Refusal | null {
  const address = parseAddress(ip);
  if (address === null) return { kind: 'not-an-ip', label: LABELS['not-an-ip'] };
  const hit = PARSED_RANGES.find((range) => inRange(address, range));
  if (hit) return { kind: hit.kind, label: LABELS[hit.kind] };
  // What is left is public: IPv4 (also in its mapped spelling) and global unicast IPv6.
  if (inRange(address, V4_MAPPED_BLOCK) || inRange(address, GLOBAL_UNICAST)) return null;
  return { kind: 'reserved', label: 'not a public unicast address' };
}

/**
 * Why the guard refuses `ip` ("a private address", "a cloud metadata address"…), or null when it
 * may be dialed. Anything that is not a well-formed IP address is refused.
 */
export function addressRefusal(ip: string, allowLoopback: boolean): string | null {
  const refusal = refusalFor(ip);
  if (!refusal) return null;
  if (allowLoopback && RELAXED_BY_ALLOW_LOOPBACK.has(refusal.kind)) return null;
  return refusal.label;
}

/** True unless `ip` is a public unicast address (the strict policy, without allowLoopback). */
export function isBlockedAddress(ip: string): boolean {
  return addressRefusal(ip, false) !== null;
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

interface Settings {
  allowLoopback: boolean;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  lookup: LookupFn;
  ca: string[] | undefined;
  onRefused: (refused: RefusedAddress) => void;
}

/** The client's connection pools, one agent per scheme; each keys its sockets by host and port. */
interface Pools {
  'http:': http.Agent;
  'https:': http.Agent;
}

interface Hop {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string | undefined;
  /** The URL that redirected here, for error messages. */
  from: URL | null;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Credentials meant for one origin; dropped when a redirect leaves it (as fetch does). */
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/** Looked up at call time (not destructured) so tests can stub the resolver without DNS. */
const systemLookup: LookupFn = async (hostname) => {
  const answers = await dns.promises.lookup(hostname, { all: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export function createOutboundFetch(options: OutboundOptions): OutboundClient {
  const settings: Settings = {
    allowLoopback: options.allowLoopback,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    maxRedirects: options.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    lookup: options.lookup ?? systemLookup,
    // `ca` replaces the default roots in Node, so extra certificates are added to them.
    ca: options.extraCaCerts?.length ? [...tls.rootCertificates, ...options.extraCaCerts] : undefined,
    onRefused: options.onRefused ?? (() => {}),
  };
  const pooling: http.AgentOptions = {
    keepAlive: true,
    maxSockets: options.maxSocketsPerOrigin ?? DEFAULT_MAX_SOCKETS_PER_ORIGIN,
    maxTotalSockets: MAX_TOTAL_SOCKETS,
    maxFreeSockets: MAX_FREE_SOCKETS_PER_ORIGIN,
    // On an idle pooled socket; Node shortens it to what the server announces (Keep-Alive: timeout=…).
    timeout: options.idleSocketTimeoutMs ?? DEFAULT_IDLE_SOCKET_TIMEOUT_MS,
    scheduling: 'lifo',
  };
  const pools: Pools = { 'http:': createAgent(settings, 'http:', pooling), 'https:': createAgent(settings, 'https:', pooling) };
  const client = (url: string, request: OutboundRequest = {}) => fetchFollowingRedirects(settings, pools, url, request);
  return Object.assign(client, {
    close() {
      pools['http:'].destroy();
      pools['https:'].destroy();
    },
  });
}

async function fetchFollowingRedirects(
  settings: Settings,
  pools: Pools,
  rawUrl: string,
  request: OutboundRequest,
): Promise<OutboundResponse> {
  let hop: Hop = {
    url: parseStartUrl(rawUrl, settings.allowLoopback),
    method: request.method ?? 'GET',
    headers: lowerCaseKeys(request.headers ?? {}),
    body: request.body,
    from: null,
  };
  // One budget for the whole exchange: a chain of slow redirects must not get 5 s per hop.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), settings.timeoutMs);
  try {
    for (let redirects = 0; ; redirects++) {
      const raw = await send(settings, pools, hop, deadline.signal);
      const location = REDIRECT_STATUSES.has(raw.status) ? raw.headers['location'] : undefined;
      if (location === undefined) return toResponse(raw, hop.url);
      if (redirects >= settings.maxRedirects) {
        throw new OutboundError(
          'too_many_redirects',
          hop.url.href,
          `${hop.url.href} redirected again after ${settings.maxRedirects} redirects`,
        );
      }
      hop = nextHop(hop, raw.status, location, settings.allowLoopback);
    }
  } finally {
    clearTimeout(timer);
  }
}

function parseStartUrl(rawUrl: string, allowLoopback: boolean): URL {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new OutboundError('invalid_url', rawUrl, `"${rawUrl}" is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && !(allowLoopback && url.protocol === 'http:')) {
    throw new OutboundError('not_https', url.href, `${url.href} must use https (got ${url.protocol.slice(0, -1)})`);
  }
  if (url.username || url.password) {
    // Never sent (https.request ignores them) — refuse rather than silently drop what an admin typed.
    throw new OutboundError('invalid_url', url.href, `${url.protocol}//${url.host}/… must not contain a user name or password`);
  }
  return url;
}

/** Where a redirect leads, with the method, body and headers fetch would send there. */
function nextHop(current: Hop, status: number, location: string, allowLoopback: boolean): Hop {
  let url: URL;
  try {
    url = new URL(location, current.url);
  } catch {
    throw new OutboundError('bad_redirect', current.url.href, `${current.url.href} redirected to an invalid URL "${location}"`);
  }
  const refuse = (why: string) =>
    new OutboundError('bad_redirect', url.href, `${current.url.href} redirected to ${url.href}, ${why}`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse(`which is not an http(s) URL`);
  if (current.url.protocol === 'https:' && url.protocol === 'http:') throw refuse('a downgrade from https to http');
  if (url.protocol === 'http:' && !allowLoopback) throw refuse('which is not https');
  if (url.username || url.password) throw refuse('which contains a user name or password');

  const headers = { ...current.headers };
  if (url.origin !== current.url.origin) for (const name of ORIGIN_BOUND_HEADERS) delete headers[name];
  // 303 always, and 301/302 after a POST, turn into a GET without a body (as browsers and fetch do).
  const becomesGet = status === 303 || ((status === 301 || status === 302) && current.method === 'POST');
  if (becomesGet) {
    delete headers['content-type'];
    delete headers['content-length'];
  }
  return {
    url,
    method: becomesGet ? 'GET' : current.method,
    headers,
    body: becomesGet ? undefined : current.body,
    from: current.url,
  };
}

/**
 * One request/response on a pooled connection. A pooled connection the server closed as it was
 * reused (its keep-alive ran out just then) fails before any answer, so the request never reached
 * the server: it is sent once more, on a new connection of its own (opened through the guard too).
 */
async function send(settings: Settings, pools: Pools, hop: Hop, deadline: AbortSignal): Promise<RawResponse> {
  const scheme = schemeOf(hop.url);
  const pooled = await sendOnce(settings, pools[scheme], hop, deadline);
  if (pooled !== STALE_CONNECTION) return pooled;
  const own = createAgent(settings, scheme, { keepAlive: false });
  try {
    const fresh = await sendOnce(settings, own, hop, deadline);
    if (fresh === STALE_CONNECTION) throw new OutboundError('unreachable', hop.url.href, `${hop.url.host} closed the connection before answering`);
    return fresh;
  } finally {
    own.destroy();
  }
}

/** sendOnce's answer when a reused pooled connection turned out closed before the request got any answer. */
const STALE_CONNECTION = Symbol('stale pooled connection');
const CONNECTION_CLOSED_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** One request/response, no redirects. Resolves once the whole body has arrived. */
function sendOnce(settings: Settings, agent: http.Agent, hop: Hop, deadline: AbortSignal): Promise<RawResponse | typeof STALE_CONNECTION> {
  const { url } = hop;
  const host = unbracket(url.hostname);
  const via = hop.from ? ` (redirected from ${hop.from.href})` : '';

  // Node dials an IP literal directly without calling `lookup`, so check it here.
  if (net.isIP(host)) {
    const why = addressRefusal(host, settings.allowLoopback);
    if (why) {
      settings.onRefused({ url: url.href, host, address: host, why });
      return Promise.reject(new OutboundError('blocked_address', url.href, `${url.host} is ${REFUSED_ADDRESS}${via}`));
    }
  }

  return new Promise<RawResponse | typeof STALE_CONNECTION>((resolve, reject) => {
    let settled = false;
    let req: http.ClientRequest | undefined;
    let res: http.IncomingMessage | undefined;

    const finish = (outcome: RawResponse | OutboundError | typeof STALE_CONNECTION) => {
      if (settled) return;
      settled = true;
      deadline.removeEventListener('abort', onTimeout);
      if (outcome instanceof OutboundError) {
        res?.destroy();
        req?.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };
    const fail = (reason: OutboundFailure, message: string, cause?: unknown) =>
      finish(new OutboundError(reason, url.href, `${message}${via}`, { cause }));
    const onTimeout = () => fail('timeout', `${url.host} did not answer within ${settings.timeoutMs} ms`);

    if (deadline.aborted) return onTimeout();
    deadline.addEventListener('abort', onTimeout);

    const headers: Record<string, string> = { 'user-agent': 'Gatehouse', ...hop.headers };
    if (hop.body !== undefined) headers['content-length'] = String(Buffer.byteLength(hop.body));

    const requestOptions: https.RequestOptions = {
      protocol: url.protocol,
      hostname: host,
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: hop.method,
      headers,
      // The guarded pool: every socket it opens resolves through the guard (GuardedHttpAgent).
      agent,
    };
    const transport = url.protocol === 'https:' ? https : http;
    try {
      req = transport.request(requestOptions);
    } catch (err) {
      return fail('invalid_url', `${url.href} cannot be requested: ${errorText(err)}`, err);
    }

    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof GuardRefusal) {
        if (err.refused) settings.onRefused({ url: url.href, ...err.refused });
        return fail(err.reason, err.message, err.cause);
      }
      if (req?.reusedSocket && !res && err.code !== undefined && CONNECTION_CLOSED_CODES.has(err.code)) return finish(STALE_CONNECTION);
      fail('unreachable', `${url.host} is unreachable: ${errorText(err)}`, err);
    });
    req.on('response', (response) => {
      res = response;
      const status = response.statusCode ?? 0;
      const responseHeaders = flattenHeaders(response.headers);
      // A redirect's body is never read: drop it instead of spending the byte budget on it.
      if (REDIRECT_STATUSES.has(status) && responseHeaders['location'] !== undefined) {
        finish({ status, headers: responseHeaders, body: Buffer.alloc(0) });
        response.destroy();
        return;
      }
      const announced = Number(responseHeaders['content-length']);
      if (Number.isFinite(announced) && announced > settings.maxBytes) {
        return fail('too_large', `${url.host} announced a ${announced}-byte body, over the ${settings.maxBytes}-byte limit`);
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > settings.maxBytes) {
          return fail('too_large', `${url.host} sent a body over the ${settings.maxBytes}-byte limit`);
        }
        chunks.push(chunk);
      });
      response.on('end', () => finish({ status, headers: responseHeaders, body: Buffer.concat(chunks) }));
      response.on('error', (err) => fail('unreachable', `${url.host} broke off the response: ${errorText(err)}`, err));
      response.on('close', () => {
        if (!response.complete) fail('unreachable', `${url.host} closed the connection before the response was complete`);
      });
    });
    req.end(hop.body);
  });
}

// ---------------------------------------------------------------------------------------------
// Guarded connections
// ---------------------------------------------------------------------------------------------

/**
 * Why the guard gave a new socket no address. The request that asked for the socket reports it,
 * with its own URL (and the refused address to the operator's log only).
 */
class GuardRefusal extends Error {
  override name = 'GuardRefusal';
  readonly code: 'EADDRNOTAVAIL' | 'ENOTFOUND';
  constructor(
    readonly reason: 'blocked_address' | 'dns_failed',
    message: string,
    readonly refused: Omit<RefusedAddress, 'url'> | null,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = reason === 'dns_failed' ? 'ENOTFOUND' : 'EADDRNOTAVAIL';
  }
}

/**
 * The `lookup` of every socket the client opens: resolve, refuse the whole answer if any address
 * is refused, and give the socket exactly the addresses that were checked.
 */
function guardedLookup(settings: Settings): net.LookupFunction {
  return (hostname, options, callback) => {
    const refuse = (refusal: GuardRefusal) => callback(refusal, '');
    resolveName(settings.lookup, hostname).then(
      (answers) => {
        if (answers.length === 0) return refuse(new GuardRefusal('dns_failed', `${hostname} does not resolve to any address`, null));
        // Refuse if ANY address is refused: the socket may try them all (happy eyeballs).
        for (const { address } of answers) {
          const why = addressRefusal(address, settings.allowLoopback);
          if (why) return refuse(new GuardRefusal('blocked_address', `${hostname} resolves to ${REFUSED_ADDRESS}`, { host: hostname, address, why }));
        }
        if (options.all) return callback(null, answers);
        const [first] = answers as [dns.LookupAddress];
        callback(null, first.address, first.family);
      },
      (err: unknown) => refuse(new GuardRefusal('dns_failed', `${hostname} could not be resolved: ${errorText(err)}`, null, { cause: err })),
    );
  };
}

/**
 * An agent that opens every socket through the guard, whatever lookup a request names: the one
 * place sockets of this client come from, pooled or not.
 */
class GuardedHttpAgent extends http.Agent {
  constructor(options: http.AgentOptions, private readonly guard: net.LookupFunction) {
    super(options);
  }
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection({ ...options, lookup: this.guard }, callback);
  }
}

/** GuardedHttpAgent for https (TLS verified against Node's roots plus `extraCaCerts`). */
class GuardedHttpsAgent extends https.Agent {
  constructor(options: https.AgentOptions, private readonly guard: net.LookupFunction) {
    super(options);
  }
  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection({ ...options, lookup: this.guard }, callback);
  }
}

/** parseStartUrl and nextHop let nothing but http: and https: through. */
const schemeOf = (url: URL): keyof Pools => (url.protocol === 'https:' ? 'https:' : 'http:');

function createAgent(settings: Settings, scheme: keyof Pools, options: http.AgentOptions): http.Agent {
  const guard = guardedLookup(settings);
  if (scheme === 'http:') return new GuardedHttpAgent(options, guard);
  return new GuardedHttpsAgent({ ...options, ...(settings.ca ? { ca: settings.ca } : {}) }, guard);
}

/** Calls the resolver and sets each family from the address itself, not from what it claims. */
async function resolveName(lookup: LookupFn, hostname: string): Promise<dns.LookupAddress[]> {
  const answers = await lookup(hostname);
  return answers.map(({ address }) => ({ address, family: net.isIP(address) }));
}

function toResponse(raw: RawResponse, url: URL): OutboundResponse {
  const body = raw.body.toString('utf8');
  return {
    status: raw.status,
    headers: raw.headers,
    url: url.href,
    body,
    json() {
      try {
        return JSON.parse(body) as unknown;
      } catch (cause) {
        throw new SyntaxError('not JSON', { cause });
      }
    },
  };
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** URL.hostname keeps the brackets around IPv6 literals; sockets want them off. */
function unbracket(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
