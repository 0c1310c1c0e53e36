import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { clientIpResolver, ipBucket, normalizeIp } from '../../src/http/client-ip.js';
import { createTestGatehouse, type TestGatehouse } from '../helpers/app.js';

/*
 * SPEC §12: rate limits (and the audit log) use the client IP behind GATEHOUSE_TRUSTED_PROXIES.
 * Every address below is a documentation or private address used only as a label: the
 * in-process app never dials anything, the helper just sets the socket's remote address.
 */
const instances: TestGatehouse[] = [];
afterAll(async () => {
  for (const i of instances) await i.destroy();
});
async function gatehouse(env: Record<string, string> = {}) {
  const t = await createTestGatehouse({ env, rateLimits: { 'sign-in:ip': { points: 3, duration: 600 } } });
  instances.push(t);
  return t;
}
const wrongPassword = (t: TestGatehouse, ip: string, forwardedFor?: string, email = 'nobody@example.com') =>
  t.request('POST', '/api/auth/sign-in/email', {
    body: { email, password: 'wrong password' },
    ip,
    ...(forwardedFor !== undefined ? { headers: { 'x-forwarded-for': forwardedFor } } : {}),
  });
const lastFailureIp = async (t: TestGatehouse) =>
  (await t.deps.db.selectFrom('audit_events').select('ip').where('action', '=', 'user.sign_in_failed').orderBy('id', 'desc').executeTakeFirstOrThrow()).ip;

describe('GATEHOUSE_TRUSTED_PROXIES configuration', () => {
  it('accepts IPv4 and IPv6 addresses and CIDRs, normalised to address/prefix', () => {
    const c = loadConfig({ GATEHOUSE_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1 ,fd00::/8,::1,[2001:db8::1],::ffff:198.51.100.7' });
    expect(c.trustedProxies).toEqual(['10.0.0.0/8', '192.0.2.1/32', 'fd00::/8', '::1/128', '2001:db8::1/128', '198.51.100.7/32']);
    expect(loadConfig({}).trustedProxies).toEqual([]);
  });

  it('refuses a bad entry with a clear error naming the variable and the entry', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'proxy.internal', '10.0.0', '10.0.0.1/-1', '300.1.1.1']) {
      let err: unknown;
      try {
        loadConfig({ GATEHOUSE_TRUSTED_PROXIES: `127.0.0.1,${bad}` });
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems[0]).toMatch(/^GATEHOUSE_TRUSTED_PROXIES: ".*" is not an IPv4\/IPv6 address or CIDR/);
      expect((err as ConfigError).problems[0]).toContain(bad);
    }
  });
});

describe('client IP resolution', () => {
  const resolve = clientIpResolver(['10.0.0.0/8', 'fd00::/8']);

  it('without trusted proxies uses the socket address and ignores X-Forwarded-For', () => {
    const none = clientIpResolver([]);
    expect(none('192.0.2.10', '198.51.100.1')).toBe('192.0.2.10');
    expect(none('::ffff:192.0.2.10', undefined)).toBe('192.0.2.10');
    expect(none(null, '198.51.100.1')).toBeNull();
  });

  it('ignores an X-Forwarded-For sent by a peer that is not a trusted proxy', () => {
    expect(resolve('192.0.2.10', '198.51.100.1')).toBe('192.0.2.10');
  });

  it('takes the right-most address that is not a trusted proxy; what the client wrote to its left is not believed', () => {
    expect(resolve('10.0.0.1', '198.51.100.1')).toBe('198.51.100.1');
    expect(resolve('10.0.0.1', '203.0.113.66, 198.51.100.1')).toBe('198.51.100.1');
    expect(resolve('10.0.0.1', '203.0.113.66, 198.51.100.1, 10.0.0.2')).toBe('198.51.100.1');
    expect(resolve('::ffff:10.0.0.1', '198.51.100.1')).toBe('198.51.100.1');
    expect(resolve('fd00::1', '2001:DB8::5, fd00::2')).toBe('2001:db8::5');
    expect(resolve('10.0.0.1', '[2001:db8::5]:4711')).toBe('2001:db8::5');
    expect(resolve('10.0.0.1', '198.51.100.1:4711')).toBe('198.51.100.1');
  });

  it('a chain of trusted proxies only: the left-most; no header or garbage: the nearest trusted hop', () => {
    expect(resolve('10.0.0.1', '10.0.0.3, 10.0.0.2')).toBe('10.0.0.3');
    expect(resolve('10.0.0.1', undefined)).toBe('10.0.0.1');
    expect(resolve('10.0.0.1', '198.51.100.1, not-an-ip')).toBe('10.0.0.1');
  });
});

describe('rate limits behind a proxy', () => {
  it('spoofed X-Forwarded-For from an untrusted peer is ignored: a new header per attempt does not buy a new bucket', async () => {
    const t = await gatehouse({ GATEHOUSE_TRUSTED_PROXIES: '10.0.0.0/8' });
    for (let i = 1; i <= 3; i++) expect((await wrongPassword(t, '192.0.2.10', `198.51.100.${i}`)).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('192.0.2.10');
    const limited = await wrongPassword(t, '192.0.2.10', '198.51.100.99');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('without GATEHOUSE_TRUSTED_PROXIES every X-Forwarded-For is ignored, even from a private peer', async () => {
    const t = await gatehouse();
    for (let i = 1; i <= 3; i++) expect((await wrongPassword(t, '10.0.0.1', `198.51.100.${i}`)).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('10.0.0.1');
    expect((await wrongPassword(t, '10.0.0.1', '198.51.100.50')).status).toBe(429);
  });

  it('behind a trusted proxy two clients get separate buckets, and the audit log records the client', async () => {
    const t = await gatehouse({ GATEHOUSE_TRUSTED_PROXIES: '10.0.0.1, fd00::/8' });
    for (let i = 0; i < 3; i++) expect((await wrongPassword(t, '10.0.0.1', '198.51.100.1')).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('198.51.100.1');
    // Client A is spent — also when it prepends a made-up address of its own.
    expect((await wrongPassword(t, '10.0.0.1', '198.51.100.1')).status).toBe(429);
    expect((await wrongPassword(t, '10.0.0.1', '203.0.113.200, 198.51.100.1')).status).toBe(429);
    // Client B, through the same proxy, has its own bucket; so has an IPv6 client through an IPv6 proxy.
    expect((await wrongPassword(t, '10.0.0.1', '198.51.100.2')).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('198.51.100.2');
    expect((await wrongPassword(t, 'fd00::7', '2001:db8::42')).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('2001:db8::42');
  });
});

describe('IPv6 and IPv4-mapped spellings of one client', () => {
  it('one spelling per address: IPv4-mapped IPv6 is the dotted IPv4, IPv6 the compressed lower-case form', () => {
    for (const a of ['2001:db8:0::1', '2001:DB8::1', '2001:0db8:0000:0000:0000:0000:0000:0001']) expect(normalizeIp(a)).toBe('2001:db8::1');
    for (const a of ['::ffff:10.0.0.1', '::FFFF:a00:1', '0:0:0:0:0:ffff:0a00:0001', '10.0.0.1']) expect(normalizeIp(a)).toBe('10.0.0.1');
    expect(normalizeIp('fe80::1%ETH0')).toBe('fe80::1%eth0');
    expect(ipBucket('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('2001:DB8:0:0:1::1')).toBe('2001:db8::/64');
    expect(ipBucket('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(ipBucket(null)).toBe('unknown');
    // The resolver hands out the canonical form, from the socket and from X-Forwarded-For alike.
    expect(clientIpResolver([])('::ffff:a00:1', undefined)).toBe('10.0.0.1');
    expect(clientIpResolver(['10.0.0.0/8'])('10.0.0.2', '2001:DB8:0::42')).toBe('2001:db8::42');
  });

  it('respelling the same address (2001:db8:0::1 / 2001:DB8::1, ::ffff:a00:1 / ::ffff:10.0.0.1 / 10.0.0.1) does not buy a new sign-in bucket, and the audit log shows the canonical address', async () => {
    const t = await gatehouse();
    expect((await wrongPassword(t, '2001:db8:0::1')).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('2001:db8::1');
    expect((await wrongPassword(t, '2001:DB8::1')).status).toBe(401);
    expect((await wrongPassword(t, '2001:0db8:0000:0000:0000:0000:0000:0001')).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('2001:db8::1');
    expect((await wrongPassword(t, '2001:db8::1')).status).toBe(429);

    for (const ip of ['::ffff:a00:1', '::ffff:10.0.0.1', '10.0.0.1']) {
      expect((await wrongPassword(t, ip)).status).toBe(401);
      expect(await lastFailureIp(t)).toBe('10.0.0.1');
    }
    expect((await wrongPassword(t, '::FFFF:10.0.0.1')).status).toBe(429);

    // The same through a trusted proxy: the spelling in X-Forwarded-For does not matter either.
    const proxied = await gatehouse({ GATEHOUSE_TRUSTED_PROXIES: '10.0.0.0/8' });
    for (const xff of ['2001:db8:0::9', '2001:DB8::9', '[2001:db8::0:9]:443']) expect((await wrongPassword(proxied, '10.0.0.2', xff)).status).toBe(401);
    expect(await lastFailureIp(proxied)).toBe('2001:db8::9');
    expect((await wrongPassword(proxied, '10.0.0.2', '2001:db8::9')).status).toBe(429);
  });

  it('an attacker holding one IPv6 /64 cannot get a fresh per-IP budget from each of its 2^64 addresses', async () => {
    const t = await gatehouse();
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff:ffff:ffff:ffff']) expect((await wrongPassword(t, ip)).status).toBe(401);
    expect(await lastFailureIp(t)).toBe('2001:db8:1:2:ffff:ffff:ffff:ffff'); // the audit log keeps the full address
    expect((await wrongPassword(t, '2001:db8:1:2:1234::abcd')).status).toBe(429);
    // The neighbouring /64 is someone else; an IPv4 address is still its own bucket.
    expect((await wrongPassword(t, '2001:db8:1:3::1')).status).toBe(401);
    expect((await wrongPassword(t, '192.0.2.1')).status).toBe(401);
    expect((await wrongPassword(t, '192.0.2.2')).status).toBe(401);
  });

  it("an attacker holding one IPv6 /64 cannot guess one account's password at a fresh per-account-and-IP budget per address", async () => {
    const t = await createTestGatehouse({ rateLimits: { 'sign-in:ip': { points: 100, duration: 600 }, 'sign-in:account-ip': { points: 3, duration: 600 } } });
    instances.push(t);
    await t.signUp('victim@example.com', 'the real password');
    for (let i = 1; i <= 3; i++) expect((await wrongPassword(t, `2001:db8:5:6::${i}`, undefined, 'victim@example.com')).status).toBe(401);
    expect((await wrongPassword(t, '2001:db8:5:6::99', undefined, 'victim@example.com')).status).toBe(429);
    expect((await wrongPassword(t, '2001:db8:5:6:0:0:0:1', undefined, 'victim@example.com')).status).toBe(429);
    // The owner, elsewhere, is not locked out by it.
    const owner = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'victim@example.com', password: 'the real password' }, ip: '2001:db8:7:8::1' });
    expect(owner.status).toBe(200);
  });
});
