import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  addressRefusal,
  createOutboundFetch,
  isBlockedAddress,
  OutboundError,
  type RefusedAddress,
  type LookupFn,
  type OutboundFailure,
  type OutboundOptions,
} from '../../src/sso/outbound.js';
import { installTripwire, offLoopbackAttempts, realConnect, uninstallTripwire } from '../helpers/tripwire.js';

/*
 * NETWORK RULE: this file only ever sends traffic to 127.0.0.0/8 or ::1. Refused addresses must
 * be refused before any connection, so a tripwire wraps net.Socket.prototype.connect (which
 * tls.connect and http(s) agents go through) for the whole file: any attempt to dial anything
 * else — by IP, or by a name whose answer is not loopback — is recorded and stopped before the
 * real connect, and afterEach fails the test that caused it.
 */

// ---------------------------------------------------------------------------------------------
// Tripwire
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Loopback test IdPs
// ---------------------------------------------------------------------------------------------

/*
 * Test-only, self-signed, for idp.test / redirect.test / 127.0.0.1 / ::1, valid 2000–2100.
 * Trusted by the client only through extraCaCerts in this file.
 */
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeMErlT2KgLFxabEC
xupNyimVdKQ7Q/riopn7ClB6dQmhRANCAASxZv7KL+3ZqJZQOe+9SAwMJQKMXin+
twzER/hHKWrqYGJhVNY/bVDCe6eaxpmJxEoQA1EXNUBmPzJx9nFXE7y6
-----END PRIVATE KEY-----
`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBqjCCAU+gAwIBAgIBATAKBggqhkjOPQQDAjATMREwDwYDVQQDDAhpZHAudGVz
dDAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowEzERMA8GA1UEAwwI
aWRwLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASxZv7KL+3ZqJZQOe+9
SAwMJQKMXin+twzER/hHKWrqYGJhVNY/bVDCe6eaxpmJxEoQA1EXNUBmPzJx9nFX
E7y6o4GRMIGOMDoGA1UdEQQzMDGCCGlkcC50ZXN0gg1yZWRpcmVjdC50ZXN0hwR/
AAABhxAAAAAAAAAAAAAAAAAAAAABMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQD
AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBTMLVQCHYIP6KVwTp89
flR/9rZydzAKBggqhkjOPQQDAgNJADBGAiEAqZswyOvURVIwRAtdhskMzUjK7erZ
QtyIN4uhB1C6+18CIQDmndFs2YQLCid6NiICnoJE6hn+7hbk8XbBJ/vASl3x1g==
-----END CERTIFICATE-----
`;

interface Served {
  scheme: 'http' | 'https';
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The client's port: one per connection, so it tells a pooled connection from a new one. */
  clientPort: number;
}
const served: Served[] = [];
/** Requests answered so far on each connection (the /once-per-connection route). */
const requestsOnConnection = new WeakMap<net.Socket, number>();

function idpHandler(scheme: 'http' | 'https') {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      served.push({ scheme, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, clientPort: req.socket.remotePort ?? 0 });
      route(req, res, body);
    });
  };
}

function route(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const q = url.searchParams;
  const path = url.pathname;
  if (path === '/json') return sendJson(res, { issuer: 'https://idp.test', ok: true });
  if (path === '/text') return res.end('<html>not json</html>');
  if (path === '/echo') return sendJson(res, { method: req.method, headers: req.headers, body });
  // /redirect?to=<url>&status=302
  if (path === '/redirect') {
    res.writeHead(Number(q.get('status') ?? 302), { location: q.get('to') ?? '/' });
    return res.end('redirect body that must not be read');
  }
  // /chain/N redirects N more times, then answers.
  const chain = /^\/chain\/(\d+)$/.exec(path);
  if (chain) {
    const left = Number(chain[1]);
    if (left === 0) return res.end('end of chain');
    res.writeHead(302, { location: `/chain/${left - 1}` });
    return res.end();
  }
  // /big?bytes=N[&length=1] — N bytes, with or without Content-Length.
  if (path === '/big') {
    const payload = Buffer.alloc(Number(q.get('bytes')), 'a');
    res.writeHead(200, q.get('length') === '1' ? { 'content-length': payload.length } : {});
    return res.end(payload);
  }
  // Announces 10 MiB, sends one byte, then stalls: the cap must trip on the header alone.
  if (path === '/announce-huge') {
    res.writeHead(200, { 'content-length': 10 * 1024 * 1024 });
    return res.write('a');
  }
  // Chunked and endless, until the client hangs up.
  if (path === '/endless') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(16 * 1024, 'a');
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    return pump();
  }
  // Headers at once, then a byte every 50 ms forever (slowloris in reverse).
  if (path === '/drip') {
    res.writeHead(200);
    const timer = setInterval(() => res.write('.'), 50);
    return res.on('close', () => clearInterval(timer));
  }
  if (path === '/hang') return; // never answers
  // /slow?ms=N answers after N ms (keeps its connection busy meanwhile).
  if (path === '/slow') {
    const timer = setTimeout(() => sendJson(res, { ok: true }), Number(q.get('ms') ?? 100));
    return res.on('close', () => clearTimeout(timer));
  }
  // Answers the first request of a connection (keep-alive) and drops the connection on the next
  // one without a word: a keep-alive connection that the server closed just as it was reused.
  if (path === '/once-per-connection') {
    const count = (requestsOnConnection.get(req.socket) ?? 0) + 1;
    requestsOnConnection.set(req.socket, count);
    if (count > 1) return req.socket.destroy();
    return sendJson(res, { ok: true });
  }
  res.writeHead(404).end('no such route');
}

function sendJson(res: http.ServerResponse, value: unknown) {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

let httpServer: http.Server;
let httpsServer: https.Server;
let otherServer: http.Server; // a second origin
let HTTP: string; // http://127.0.0.1:port
let HTTPS_PORT: number;
let OTHER: string;
/** A loopback port where nothing listens. */
let CLOSED_PORT: number;

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Resolves idp.test and redirect.test to 127.0.0.1 and nothing else; never touches real DNS. */
const loopbackLookup: LookupFn = async (hostname) => {
  if (hostname === 'idp.test' || hostname === 'redirect.test') return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

/** A resolver that must not be reached (refused before DNS). */
const unreachableLookup = vi.fn<LookupFn>(async () => {
  throw new Error('lookup must not be called');
});

/** A fake resolver answering `hostname` with the given addresses. */
function answering(...addresses: string[]): LookupFn {
  return vi.fn<LookupFn>(async () => addresses.map((address) => ({ address, family: net.isIPv6(address) ? 6 : 4 })));
}

function strictFetch(extra: Partial<OutboundOptions> = {}) {
  return createOutboundFetch({ allowLoopback: false, lookup: unreachableLookup, ...extra });
}

/** The test-IdP client: allowLoopback, the test CA, the fake resolver. */
function loopbackFetch(extra: Partial<OutboundOptions> = {}) {
  return createOutboundFetch({ allowLoopback: true, extraCaCerts: [TEST_CERT], lookup: loopbackLookup, ...extra });
}

async function failure(promise: Promise<unknown>): Promise<OutboundError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OutboundError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

async function expectFailure(promise: Promise<unknown>, reason: OutboundFailure, message?: RegExp | string) {
  const err = await failure(promise);
  expect(err.reason, err.message).toBe(reason);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

function servedPaths(): string[] {
  return served.map((s) => `${s.scheme} ${s.method} ${s.url}`);
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  installTripwire();
  httpServer = http.createServer(idpHandler('http'));
  httpsServer = https.createServer({ key: TEST_KEY, cert: TEST_CERT }, idpHandler('https'));
  otherServer = http.createServer(idpHandler('http'));
  HTTP = `http://127.0.0.1:${await listen(httpServer)}`;
  HTTPS_PORT = await listen(httpsServer);
  OTHER = `http://127.0.0.1:${await listen(otherServer)}`;
  const closed = http.createServer();
  CLOSED_PORT = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
});

afterEach(() => {
  served.length = 0;
  vi.restoreAllMocks();
  unreachableLookup.mockClear();
  // The test that just ran tried to connect off loopback: fail it, by name.
  expect(offLoopbackAttempts.splice(0), 'connection attempts off loopback').toEqual([]);
});

afterAll(async () => {
  uninstallTripwire();
  for (const server of [httpServer, httpsServer, otherServer]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  expect(offLoopbackAttempts).toEqual([]);
});

// ---------------------------------------------------------------------------------------------

describe('the network tripwire of this file', () => {
  it('stops off-loopback connects by IP, by resolved name, through tls and https, at every layer', async () => {
    // Probes aim at ::ffff:127.0.0.1: the tripwire counts it as off-loopback, yet were the
    // tripwire ever to fail, the packet would still only go to 127.0.0.1 (a closed port).
    const mappedLoopback: net.LookupFunction = (_host, opts, cb) =>
      opts.all ? cb(null, [{ address: '::ffff:127.0.0.1', family: 6 }]) : cb(null, '::ffff:127.0.0.1', 6);
    const errorOf = (emitter: NodeJS.EventEmitter) => new Promise<Error>((resolve) => emitter.once('error', resolve));

    expect(() => net.connect({ host: '::ffff:127.0.0.1', port: CLOSED_PORT })).toThrow(/tripwire/);
    expect(() => tls.connect({ host: '::ffff:127.0.0.1', port: CLOSED_PORT })).toThrow(/tripwire/);
    // https agents pass `path: null` — the shape the guard's own requests have.
    expect(() => https.request({ hostname: '::ffff:127.0.0.1', port: CLOSED_PORT, agent: false })).toThrow(/tripwire/);
    const viaName = https.request({ hostname: 'probe.test', port: CLOSED_PORT, agent: false, lookup: mappedLoopback });
    viaName.end();
    expect((await errorOf(viaName)).message).toMatch(/tripwire/);
    // Layer 3 alone: bypass the connect hook entirely.
    const raw = realConnect.call(new net.Socket(), { host: 'probe.test', port: CLOSED_PORT, lookup: mappedLoopback });
    expect((await errorOf(raw)).message).toMatch(/tripwire/);

    expect(offLoopbackAttempts.splice(0)).toEqual([
      'connect ::ffff:127.0.0.1',
      'connect ::ffff:127.0.0.1',
      'connect ::ffff:127.0.0.1',
      'resolve probe.test -> ::ffff:127.0.0.1',
      'dial probe.test -> ::ffff:127.0.0.1',
    ]);
  });
});

describe('isBlockedAddress', () => {
  it('refuses loopback, private, link-local, CGNAT, unspecified, multicast, broadcast and reserved IPv4', () => {
    const refused = [
      '127.0.0.1', '127.255.255.254', '127.1.2.3',
      '10.0.0.0', '10.0.0.5', '10.255.255.255',
      '172.16.0.0', '172.20.1.1', '172.31.255.255',
      '192.168.0.1', '192.168.1.1', '192.168.255.255',
      '169.254.0.1', '169.254.255.255',
      '100.64.0.0', '100.100.1.1', '100.127.255.255',
      '0.0.0.0', '0.1.2.3',
      '224.0.0.1', '239.255.255.250',
      '255.255.255.255',
      '240.0.0.1', '250.1.2.3',
      '192.0.0.8', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '198.19.255.255', '192.88.99.1',
    ];
    expect(refused.filter((ip) => !isBlockedAddress(ip))).toEqual([]);
  });

  it('refuses cloud metadata addresses, including those inside no private block', () => {
    const metadata = [
      '169.254.169.254', // AWS, GCP, Azure, OCI, DigitalOcean
      '169.254.170.2', // AWS ECS
      '100.100.100.200', // Alibaba
      '168.63.129.16', // Azure WireServer — public address space
      '192.0.0.192', // Oracle
      'fd00:ec2::254', // AWS IPv6
      'fd20:ce::254', // GCP IPv6
    ];
    expect(metadata.filter((ip) => !isBlockedAddress(ip))).toEqual([]);
    expect(addressRefusal('168.63.129.16', false)).toBe('a cloud metadata address');
    expect(addressRefusal('FD00:EC2:0:0:0:0:0:254', false)).toBe('a cloud metadata address');
  });

  it('refuses IPv6 loopback, unspecified, unique-local, link-local, multicast and all outside 2000::/3', () => {
    const refused = [
      '::1', '0:0:0:0:0:0:0:1', '::',
      'fc00::1', 'fd12:3456::1', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'fe80::1', 'FE80::ABCD', 'febf::1',
      'ff02::1', 'ff05::1:3',
      'fec0::1', // deprecated site-local
      '100::1', // discard-only
      '1fff:ffff::1', '4000::1', 'e000::1',
      '2001:db8::1', '3fff::1', // documentation
      '2001:2::1', // benchmarking (IETF protocol assignments)
    ];
    expect(refused.filter((ip) => !isBlockedAddress(ip))).toEqual([]);
  });

  it('refuses IPv4-mapped and IPv4-embedding IPv6 spellings of refused addresses', () => {
    const refused = [
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:7F00:0001', '0:0:0:0:0:ffff:127.0.0.1',
      '::ffff:10.0.0.5', '::ffff:192.168.1.1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe',
      '::ffff:100.100.100.200', '::ffff:0.0.0.0', '::ffff:255.255.255.255',
      '::127.0.0.1', // deprecated IPv4-compatible
      '::ffff:0:127.0.0.1', // IPv4-translated
      '64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe', '64:ff9b::8.8.8.8', // NAT64
      '2002:a9fe:a9fe::1', // 6to4
      '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo
    ];
    expect(refused.filter((ip) => !isBlockedAddress(ip))).toEqual([]);
  });

  it('refuses anything that is not a plain IP address', () => {
    const refused = [
      '', 'localhost', 'idp.example.com', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.0.0.1.',
      '[::1]', 'fe80::1%eth0', '2606:4700::1%1', ' 8.8.8.8', '8.8.8.8/32', '1.2.3.4.5', '::ffff:1.2.3.4.5',
    ];
    expect(refused.filter((ip) => !isBlockedAddress(ip))).toEqual([]);
    expect(addressRefusal('127.1', true)).toBe('not an IP address');
  });

  it('allows public unicast addresses, including the first and last outside each refused block', () => {
    const allowed = [
      '93.184.216.34', '8.8.8.8', '1.1.1.1',
      '9.255.255.255', '11.0.0.0',
      '100.63.255.255', '100.128.0.0',
      '126.255.255.255', '128.0.0.0',
      '169.253.255.255', '169.255.0.0',
      '172.15.255.255', '172.32.0.0',
      '192.167.255.255', '192.169.0.0',
      '198.17.255.255', '198.20.0.0',
      '223.255.255.255', '1.0.0.0',
      '::ffff:93.184.216.34', // mapped spelling of a public address dials that public address
      '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '2000::1', '3ffe::1',
    ];
    expect(allowed.filter((ip) => isBlockedAddress(ip))).toEqual([]);
  });

  it('allowLoopback relaxes loopback, private and CGNAT only — never metadata, link-local or the rest', () => {
    const relaxed = ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.0.0.5', '172.17.0.2', '192.168.1.1', 'fd12::1', '100.64.0.1'];
    expect(relaxed.filter((ip) => addressRefusal(ip, true) !== null)).toEqual([]);
    const stillRefused = [
      '169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '168.63.129.16', '::ffff:169.254.169.254',
      '169.254.1.1', 'fe80::1', '0.0.0.0', '::', '224.0.0.1', '255.255.255.255', 'ff02::1', '64:ff9b::a9fe:a9fe',
    ];
    expect(stillRefused.filter((ip) => addressRefusal(ip, true) === null)).toEqual([]);
  });
});

describe('refused before any connection (allowLoopback: false)', () => {
  const fetch = strictFetch();

  it('cloud metadata by IP literal: http(s)://169.254.169.254/latest/meta-data', async () => {
    await expectFailure(fetch('https://169.254.169.254/latest/meta-data'), 'blocked_address', '169.254.169.254 is a private or reserved address');
    await expectFailure(fetch('http://169.254.169.254/latest/meta-data'), 'not_https', /must use https/);
    // Even the local-testing switch does not open the metadata service.
    const lenient = createOutboundFetch({ allowLoopback: true, lookup: unreachableLookup });
    await expectFailure(lenient('http://169.254.169.254/latest/meta-data'), 'blocked_address', /private or reserved/);
    await expectFailure(lenient('http://[fd00:ec2::254]/latest/meta-data'), 'blocked_address', /private or reserved/);
    await expectFailure(lenient('http://100.100.100.200/latest/meta-data'), 'blocked_address', /private or reserved/);
    expect(unreachableLookup).not.toHaveBeenCalled();
  });

  it('loopback by IP literal: https://127.0.0.1/, https://[::1]/, https://[::ffff:127.0.0.1]/', async () => {
    await expectFailure(fetch(`https://127.0.0.1:${HTTPS_PORT}/json`), 'blocked_address', `127.0.0.1:${HTTPS_PORT} is a private or reserved address`);
    await expectFailure(fetch('https://[::1]/'), 'blocked_address', '[::1] is a private or reserved address');
    await expectFailure(fetch('https://[::ffff:127.0.0.1]/'), 'blocked_address', /is a private or reserved address/);
    await expectFailure(fetch('https://[0:0:0:0:0:ffff:7f00:1]/'), 'blocked_address');
    expect(served).toEqual([]);
  });

  it('loopback spelled as decimal, hex, octal, short, percent-encoded or full-width IPv4', async () => {
    // WHATWG URL turns every one of these into 127.0.0.1 before we see it — but test it.
    const spellings = [
      'https://2130706433/', 'https://0x7f000001/', 'https://0x7f.1/', 'https://0177.0.0.1/',
      'https://017700000001/', 'https://127.1/', 'https://127.0.0.1./', 'https://%31%32%37.0.0.1/', 'https://１２７.0.0.1/',
    ];
    for (const url of spellings) {
      expect(new URL(url).hostname, url).toBe('127.0.0.1');
      await expectFailure(fetch(url), 'blocked_address', '127.0.0.1 is a private or reserved address');
    }
    await expectFailure(fetch('https://0/'), 'blocked_address', '0.0.0.0 is a private or reserved address');
    await expectFailure(fetch('https://0xa9fea9fe/'), 'blocked_address', '169.254.169.254 is a private or reserved address');
  });

  it('other refused IP literals: private, link-local, unspecified, IPv4-embedding IPv6', async () => {
    const literals = [
      'https://10.0.0.5/', 'https://192.168.1.1/', 'https://172.16.0.1/', 'https://100.64.0.1/', 'https://169.254.1.1/',
      'https://0.0.0.0/', 'https://[::]/', 'https://[fe80::1]/', 'https://[fd00::1]/', 'https://[::ffff:169.254.169.254]/',
      'https://[64:ff9b::a9fe:a9fe]/', 'https://[2002:7f00:1::]/', 'https://255.255.255.255/', 'https://224.0.0.1/',
    ];
    for (const url of literals) await expectFailure(fetch(url), 'blocked_address');
    expect(unreachableLookup).not.toHaveBeenCalled();
  });

  it('DNS pointing at a private address: names the host, never the address it resolved to nor its kind (no internal DNS oracle)', async () => {
    const lookup = answering('10.0.0.5');
    const refused: RefusedAddress[] = [];
    const err = await expectFailure(strictFetch({ lookup, onRefused: (r) => refused.push(r) })('https://idp.example.com/.well-known/openid-configuration'), 'blocked_address');
    expect(err.message).toBe('idp.example.com resolves to a private or reserved address');
    expect(err.message).not.toContain('10.0.0.5');
    expect(err.url).toBe('https://idp.example.com/.well-known/openid-configuration');
    expect(lookup).toHaveBeenCalledWith('idp.example.com');
    // The operator's log hook gets the detail.
    expect(refused).toEqual([{ url: 'https://idp.example.com/.well-known/openid-configuration', host: 'idp.example.com', address: '10.0.0.5', why: 'a private address' }]);
  });

  it('DNS pointing at metadata, mapped loopback, 192.168/16 or link-local IPv6', async () => {
    const cases: Array<[string, string]> = [
      ['169.254.169.254', 'a cloud metadata address'],
      ['::ffff:127.0.0.1', 'a loopback address'],
      ['192.168.1.1', 'a private address'],
      ['fe80::1', 'a link-local address'],
      ['fd00:ec2::254', 'a cloud metadata address'],
      ['127.0.0.1', 'a loopback address'],
      ['not-an-address', 'not an IP address'],
    ];
    for (const [address, why] of cases) {
      const refused: RefusedAddress[] = [];
      const err = await expectFailure(strictFetch({ lookup: answering(address), onRefused: (r) => refused.push(r) })('https://internal.attacker.test/'), 'blocked_address');
      expect(err.message).toBe('internal.attacker.test resolves to a private or reserved address');
      expect(refused.map((r) => [r.address, r.why])).toEqual([[address, why]]);
    }
  });

  it('DNS answer mixing a public and a private address is refused whole, without dialing either', async () => {
    // Public first: a guard that only checked the first answer would dial — the tripwire stops it.
    const lookup = answering('93.184.216.34', '10.0.0.5');
    const err = await expectFailure(strictFetch({ lookup })('https://internal.attacker.test/'), 'blocked_address', /resolves to a private or reserved address/);
    expect(err.message).not.toMatch(/10\.0\.0\.5|93\.184/);
    const v6 = answering('2606:4700:4700::1111', '::1');
    const err6 = await expectFailure(strictFetch({ lookup: v6 })('https://internal.attacker.test/'), 'blocked_address', /resolves to a private or reserved address/);
    expect(err6.message).not.toContain('::1');
  });

  it('plain http to an IdP, refused before DNS', async () => {
    await expectFailure(fetch('http://idp.example.com/.well-known/openid-configuration'), 'not_https', 'http://idp.example.com/.well-known/openid-configuration must use https (got http)');
    expect(unreachableLookup).not.toHaveBeenCalled();
  });

  it('non-http schemes: file:, ftp:, gopher:, data:, javascript:', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://idp.example.com/', 'gopher://127.0.0.1:6379/_INFO', 'data:,hello', 'javascript:alert(1)']) {
      await expectFailure(fetch(url), 'not_https');
    }
    // allowLoopback adds http, nothing else.
    await expectFailure(loopbackFetch()('file:///etc/passwd'), 'not_https');
  });

  it('not a URL, or a URL carrying credentials', async () => {
    await expectFailure(fetch('idp.example.com'), 'invalid_url', /not an absolute URL/);
    await expectFailure(fetch(''), 'invalid_url');
    await expectFailure(fetch('https://'), 'invalid_url');
    await expectFailure(fetch('https://admin:secret@idp.example.com/'), 'invalid_url', /user name or password/);
    const err = await failure(fetch('https://admin:secret@idp.example.com/'));
    expect(err.message).not.toContain('secret');
  });

  it('a name that does not resolve, or resolves to nothing', async () => {
    await expectFailure(strictFetch({ lookup: loopbackLookup })('https://nx.example.com/'), 'dns_failed', /nx\.example\.com could not be resolved.*ENOTFOUND/);
    await expectFailure(strictFetch({ lookup: answering() })('https://empty.example.com/'), 'dns_failed', 'empty.example.com does not resolve to any address');
  });

  it('uses dns.promises.lookup by default, and refuses on its answer', async () => {
    const spy = vi
      .spyOn(dns.promises, 'lookup')
      .mockResolvedValue([{ address: '10.1.2.3', family: 4 }] as never);
    await expectFailure(createOutboundFetch({ allowLoopback: false })('https://idp.example.com/'), 'blocked_address', 'idp.example.com resolves to a private or reserved address');
    expect(spy).toHaveBeenCalledWith('idp.example.com', { all: true });
  });

  it('a resolver that never answers times out', async () => {
    const stuck = createOutboundFetch({ allowLoopback: false, timeoutMs: 200, lookup: () => new Promise(() => {}) });
    const started = Date.now();
    await expectFailure(stuck('https://slow-dns.example.com/'), 'timeout', 'slow-dns.example.com did not answer within 200 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('a loopback test IdP (allowLoopback: true)', () => {
  const fetch = loopbackFetch();

  it('fetches JSON over http and https; json() throws "not JSON" on anything else', async () => {
    const res = await fetch(`${HTTP}/json`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.url).toBe(`${HTTP}/json`);
    expect(res.json()).toEqual({ issuer: 'https://idp.test', ok: true });

    const secure = await fetch(`https://idp.test:${HTTPS_PORT}/json`);
    expect(secure.json()).toEqual({ issuer: 'https://idp.test', ok: true });

    const html = await fetch(`${HTTP}/text`);
    expect(html.body).toBe('<html>not json</html>');
    expect(() => html.json()).toThrow(new SyntaxError('not JSON'));
    expect(() => html.json()).not.toThrow(OutboundError);
  });

  it('dials exactly the address the guard checked: one lookup, and the IdP sees the name over TLS', async () => {
    const lookup = vi.fn(loopbackLookup);
    const res = await loopbackFetch({ lookup })(`https://idp.test:${HTTPS_PORT}/echo`);
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith('idp.test');
    expect((res.json() as { headers: Record<string, string> }).headers.host).toBe(`idp.test:${HTTPS_PORT}`);
  });

  it('DNS rebinding: once the pooled connection has closed, the next request resolves afresh and is refused on the new answer', async () => {
    let calls = 0;
    const rebinding: LookupFn = async () => [{ address: calls++ === 0 ? '127.0.0.1' : '169.254.169.254', family: 4 }];
    const rebound = loopbackFetch({ lookup: rebinding, idleSocketTimeoutMs: 50 });
    expect((await rebound(`https://idp.test:${HTTPS_PORT}/json`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 150)); // the idle connection closes
    await expectFailure(rebound(`https://idp.test:${HTTPS_PORT}/json`), 'blocked_address', 'idp.test resolves to a private or reserved address');
    expect(calls).toBe(2);
    expect(served).toHaveLength(1);
    rebound.close();
  });

  it('DNS answer with one allowed and one metadata address is refused whole', async () => {
    const lookup = answering('127.0.0.1', '169.254.169.254');
    await expectFailure(loopbackFetch({ lookup })(`https://idp.test:${HTTPS_PORT}/json`), 'blocked_address', /^idp\.test resolves to a private or reserved address$/);
    expect(served).toEqual([]);
  });

  it('an IdP certificate that is not trusted is unreachable (TLS is verified)', async () => {
    const untrusting = createOutboundFetch({ allowLoopback: true, lookup: loopbackLookup });
    await expectFailure(untrusting(`https://idp.test:${HTTPS_PORT}/json`), 'unreachable', /idp\.test:\d+ is unreachable: .*certificate/);
    // And a certificate for another name: the client checks the name it was asked for.
    const lookup: LookupFn = async () => [{ address: '127.0.0.1', family: 4 }];
    await expectFailure(loopbackFetch({ lookup })(`https://wrong-name.test:${HTTPS_PORT}/json`), 'unreachable', /altnames|Hostname/);
    expect(served).toEqual([]);
  });

  it('a closed port is unreachable', async () => {
    await expectFailure(fetch(`http://127.0.0.1:${CLOSED_PORT}/`), 'unreachable', /ECONNREFUSED/);
  });

  it('POSTs a form body with its headers (token endpoint)', async () => {
    const form = 'grant_type=authorization_code&code=abc%2F123&redirect_uri=https%3A%2F%2Fgatehouse.test%2Fcb';
    const res = await fetch(`${HTTP}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: 'Basic Y2xpZW50OnNlY3JldA==', Accept: 'application/json' },
      body: form,
    });
    const echo = res.json() as { method: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe(form);
    expect(echo.headers).toMatchObject({
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic Y2xpZW50OnNlY3JldA==',
      accept: 'application/json',
      'content-length': String(form.length),
      'user-agent': 'Gatehouse',
    });
  });

  it('follows a 302 chain (relative and absolute Location) to the final URL', async () => {
    const hop2 = `${HTTP}/redirect?to=${encodeURIComponent(`${HTTP}/json`)}`;
    const res = await fetch(`${HTTP}/redirect?to=${encodeURIComponent(`/redirect?to=${encodeURIComponent(hop2)}&status=301`)}`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${HTTP}/json`);
    expect(res.json()).toMatchObject({ ok: true });
    expect(served.map((s) => s.url.split('?')[0])).toEqual(['/redirect', '/redirect', '/redirect', '/json']);
  });

  it('redirect loops: follows exactly maxRedirects, refuses one more', async () => {
    const ok = await fetch(`${HTTP}/chain/5`);
    expect(ok.body).toBe('end of chain');
    expect(ok.url).toBe(`${HTTP}/chain/0`);
    await expectFailure(fetch(`${HTTP}/chain/6`), 'too_many_redirects', /after 5 redirects/);
    expect(served).toHaveLength(6 + 6); // 6 for the first, 6 before giving up on the second
    await expectFailure(loopbackFetch({ maxRedirects: 0 })(`${HTTP}/chain/1`), 'too_many_redirects');
  });

  it('redirect to cloud metadata is refused on that hop, by literal or by name, without dialing', async () => {
    const toMetadata = `${HTTP}/redirect?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data/iam/security-credentials/')}`;
    const err = await expectFailure(fetch(toMetadata), 'blocked_address', /^169\.254\.169\.254 is a private or reserved address \(redirected from http:\/\/127\.0\.0\.1/);
    expect(err.url).toBe('http://169.254.169.254/latest/meta-data/iam/security-credentials/');

    // Two harmless hops first, then a name that resolves to the metadata service.
    const lookup: LookupFn = async (host) =>
      host === 'metadata.attacker.test' ? [{ address: '169.254.169.254', family: 4 }] : loopbackLookup(host);
    const viaName = `${HTTP}/redirect?to=${encodeURIComponent(`/redirect?to=${encodeURIComponent('http://metadata.attacker.test/latest/meta-data')}`)}`;
    await expectFailure(loopbackFetch({ lookup })(viaName), 'blocked_address', /^metadata\.attacker\.test resolves to a private or reserved address \(redirected from /);

    await expectFailure(fetch(`${HTTP}/redirect?to=${encodeURIComponent('http://[::ffff:a9fe:a9fe]/')}`), 'blocked_address', /^\[::ffff:a9fe:a9fe\] is a private or reserved address/);
    await expectFailure(fetch(`${HTTP}/redirect?to=${encodeURIComponent('http://[fe80::1]/')}`), 'blocked_address', /^\[fe80::1\] is a private or reserved address/);
  });

  it('redirect to a non-http scheme (file:, ftp:, gopher:, data:) is refused', async () => {
    for (const target of ['file:///etc/passwd', 'ftp://127.0.0.1/', 'gopher://127.0.0.1:6379/_FLUSHALL', 'data:text/plain,hi', 'javascript:alert(1)']) {
      await expectFailure(fetch(`${HTTP}/redirect?to=${encodeURIComponent(target)}`), 'bad_redirect', /not an http\(s\) URL/);
    }
    await expectFailure(fetch(`${HTTP}/redirect?to=${encodeURIComponent('http://a:b@127.0.0.1/')}`), 'bad_redirect', /user name or password/);
    await expectFailure(fetch(`${HTTP}/redirect?to=${encodeURIComponent('http://[::1')}`), 'bad_redirect', /invalid URL/);
  });

  it('https → http downgrade is refused, even with allowLoopback, before the http hop is sent', async () => {
    const target = `${HTTP}/echo?downgraded=1`;
    await expectFailure(
      fetch(`https://idp.test:${HTTPS_PORT}/redirect?to=${encodeURIComponent(target)}`),
      'bad_redirect',
      /a downgrade from https to http/,
    );
    expect(servedPaths()).toEqual([`https GET /redirect?to=${encodeURIComponent(target)}`]);
  });

  it('303 after a POST becomes a GET without the body; 307 keeps method and body', async () => {
    const post = { method: 'POST' as const, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' };
    const after303 = (await fetch(`${HTTP}/redirect?status=303&to=/echo`, post)).json() as { method: string; body: string; headers: Record<string, string> };
    expect(after303).toMatchObject({ method: 'GET', body: '' });
    expect(after303.headers['content-type']).toBeUndefined();
    const after307 = (await fetch(`${HTTP}/redirect?status=307&to=/echo`, post)).json() as { method: string; body: string };
    expect(after307).toMatchObject({ method: 'POST', body: 'a=1' });
  });

  it('a cross-origin redirect does not carry Authorization or Cookie along', async () => {
    const headers = { authorization: 'Bearer access-token', cookie: 'sid=1', accept: 'application/json' };
    const sameOrigin = (await fetch(`${HTTP}/redirect?to=/echo`, { headers })).json() as { headers: Record<string, string> };
    expect(sameOrigin.headers).toMatchObject(headers);
    const crossOrigin = (await fetch(`${HTTP}/redirect?to=${encodeURIComponent(`${OTHER}/echo`)}`, { headers })).json() as { headers: Record<string, string> };
    expect(crossOrigin.headers.accept).toBe('application/json');
    expect(crossOrigin.headers.authorization).toBeUndefined();
    expect(crossOrigin.headers.cookie).toBeUndefined();
  });

  it('a Content-Length over the cap fails at once, before the body arrives', async () => {
    const started = Date.now();
    await expectFailure(fetch(`${HTTP}/announce-huge`), 'too_large', /announced a 10485760-byte body, over the 1048576-byte limit/);
    expect(Date.now() - started).toBeLessThan(2_000); // not the 5 s timeout
  });

  it('an endless chunked body fails as soon as it passes the cap', async () => {
    await expectFailure(loopbackFetch({ maxBytes: 100_000 })(`${HTTP}/endless`), 'too_large', /over the 100000-byte limit/);
  });

  it('the default cap is 1 MiB, with and without Content-Length', async () => {
    for (const length of ['1', '0']) {
      expect((await fetch(`${HTTP}/big?bytes=1048576&length=${length}`)).body).toHaveLength(1048576);
      await expectFailure(fetch(`${HTTP}/big?bytes=1048577&length=${length}`), 'too_large');
    }
    const small = loopbackFetch({ maxBytes: 10 });
    expect((await small(`${HTTP}/big?bytes=10`)).body).toBe('aaaaaaaaaa');
    await expectFailure(small(`${HTTP}/big?bytes=11&length=1`), 'too_large', /announced/);
    await expectFailure(small(`${HTTP}/big?bytes=11`), 'too_large', /sent a body/);
  });

  it('a server that never answers times out', async () => {
    const started = Date.now();
    await expectFailure(loopbackFetch({ timeoutMs: 300 })(`${HTTP}/hang`), 'timeout', /did not answer within 300 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a body dripped slowly still hits the one timeout for the whole exchange', async () => {
    const started = Date.now();
    await expectFailure(loopbackFetch({ timeoutMs: 300 })(`${HTTP}/redirect?to=/drip`), 'timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('pooled keep-alive connections (allowLoopback: true)', () => {
  /** A resolver answering idp.test and redirect.test with 127.0.0.1 first, then with `then`. */
  function rebindingAfterFirst(then: string) {
    let calls = 0;
    const lookup = vi.fn<LookupFn>(async (host) => {
      if (host !== 'idp.test' && host !== 'redirect.test') return loopbackLookup(host);
      return [{ address: calls++ === 0 ? '127.0.0.1' : then, family: 4 }];
    });
    return lookup;
  }

  it('reuses one connection per origin for consecutive requests, resolving the name only when a connection opens', async () => {
    const lookup = vi.fn(loopbackLookup);
    const pooled = loopbackFetch({ lookup });
    for (let i = 0; i < 3; i++) expect((await pooled(`https://idp.test:${HTTPS_PORT}/json`)).status).toBe(200);
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(new Set(served.map((s) => s.clientPort)).size).toBe(1);
    pooled.close();
  });

  it('a pooled connection to a host that re-resolves to a private address is refused before connecting', async () => {
    // The first request holds the only connection; the second needs a new one, and by then the
    // name points at the metadata service: the guard refuses that socket before it dials.
    const lookup = rebindingAfterFirst('169.254.169.254');
    const refused: RefusedAddress[] = [];
    const pooled = loopbackFetch({ lookup, onRefused: (r) => refused.push(r) });
    const busy = pooled(`https://idp.test:${HTTPS_PORT}/slow?ms=200`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expectFailure(pooled(`https://idp.test:${HTTPS_PORT}/json`), 'blocked_address', /^idp\.test resolves to a private or reserved address$/);
    expect((await busy).status).toBe(200);
    expect(lookup).toHaveBeenCalledTimes(2);
    expect(servedPaths()).toEqual(['https GET /slow?ms=200']);
    expect(refused).toEqual([{ url: `https://idp.test:${HTTPS_PORT}/json`, host: 'idp.test', address: '169.254.169.254', why: 'a cloud metadata address' }]);
    pooled.close();
  });

  it('a pooled connection stays on the address checked when it opened: a later DNS answer pointing elsewhere reaches no new host', async () => {
    // Rebinding after the first answer changes nothing for the open connection (it is to the
    // checked address); it is the next new connection that is checked, and refused.
    const lookup = rebindingAfterFirst('169.254.169.254');
    const pooled = loopbackFetch({ lookup });
    expect((await pooled(`http://idp.test:${new URL(HTTP).port}/json`)).status).toBe(200);
    expect((await pooled(`http://idp.test:${new URL(HTTP).port}/json`)).status).toBe(200);
    expect(new Set(served.map((s) => s.clientPort)).size).toBe(1);
    pooled.close(); // every pooled connection ends: the next request needs a new one
    await expectFailure(pooled(`http://idp.test:${new URL(HTTP).port}/json`), 'blocked_address', 'idp.test resolves to a private or reserved address');
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('a connection opened for one name is never used for another name on the same address (no check skipped by pooling)', async () => {
    const lookup = vi.fn(loopbackLookup);
    const pooled = loopbackFetch({ lookup });
    const port = new URL(HTTP).port;
    await pooled(`http://idp.test:${port}/json`);
    await pooled(`http://redirect.test:${port}/json`);
    await pooled(`http://idp.test:${port}/json`);
    expect(lookup.mock.calls.map(([host]) => host)).toEqual(['idp.test', 'redirect.test']);
    const [first, second, third] = served.map((s) => s.clientPort);
    expect(second).not.toBe(first);
    expect(third).toBe(first);
    pooled.close();
  });

  it('a pooled connection the server dropped as it was reused is retried once, on a new connection opened through the guard', async () => {
    const lookup = rebindingAfterFirst('127.0.0.1');
    const pooled = loopbackFetch({ lookup });
    const url = `http://idp.test:${new URL(HTTP).port}/once-per-connection`;
    expect((await pooled(url)).status).toBe(200);
    expect((await pooled(url)).json()).toEqual({ ok: true });
    expect(lookup).toHaveBeenCalledTimes(2); // the retry's connection was resolved and checked too
    pooled.close();
  });

  it('the retry of a dropped pooled connection is refused when the name now resolves to a metadata address', async () => {
    const lookup = rebindingAfterFirst('169.254.169.254');
    const pooled = loopbackFetch({ lookup });
    const url = `http://idp.test:${new URL(HTTP).port}/once-per-connection`;
    expect((await pooled(url)).status).toBe(200);
    await expectFailure(pooled(url), 'blocked_address', 'idp.test resolves to a private or reserved address');
    pooled.close();
  });

  it('opens at most maxSocketsPerOrigin connections to one origin: further requests wait for a free one', async () => {
    const pooled = loopbackFetch({ maxSocketsPerOrigin: 2 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => pooled(`${HTTP}/slow?ms=30`)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(served.map((s) => s.clientPort)).size).toBe(2);
    pooled.close();
  });
});
