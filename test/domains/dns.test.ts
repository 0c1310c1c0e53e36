import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTxtLookup, type TxtLookup } from '../../src/domains/dns.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

/** The TXT lookup against a real DNS server on loopback: each answer DNS can give, classified. */
let dns: TestDnsServer;
let lookup: TxtLookup;

beforeAll(async () => {
  dns = await startDnsServer();
  lookup = createTxtLookup({ servers: [dns.address], timeoutMs: 1500, perTryMs: 500, tries: 1 });
});
afterAll(async () => {
  await dns.close();
});

describe('TXT lookup', () => {
  it('returns every TXT value, joining the character-strings of a split record', async () => {
    dns.setTxt('_x.found.test', ['v=one', ['part-a', 'part-b']]);
    const res = await lookup('_x.found.test');
    expect(res).toEqual({ ok: true, records: expect.arrayContaining(['v=one', 'part-apart-b']) });
    expect(dns.queries).toContainEqual({ name: '_x.found.test', type: 'TXT', transport: 'udp' });
  });

  it('a name that exists without TXT is no_record; an unknown name is nxdomain', async () => {
    dns.addName('_x.empty.test');
    expect(await lookup('_x.empty.test')).toMatchObject({ ok: false, reason: 'no_record' });
    expect(await lookup('_x.nowhere.test')).toMatchObject({ ok: false, reason: 'nxdomain' });
  });

  it('a silent server is a timeout, within the deadline', async () => {
    dns.ignore('_x.silent.test');
    const res = await lookup('_x.silent.test');
    expect(res).toMatchObject({ ok: false, reason: 'timeout' });
    expect(dns.queries.filter((q) => q.name === '_x.silent.test').length).toBeGreaterThan(0);
  });

  it('SERVFAIL is a dns_error with its code', async () => {
    dns.fail('_x.broken.test');
    expect(await lookup('_x.broken.test')).toEqual({ ok: false, reason: 'dns_error', dnsCode: 'ESERVFAIL' });
  });

  it('a large answer truncated over UDP is fetched again over TCP', async () => {
    const many = Array.from({ length: 12 }, (_, i) => `filler-${i}-${'x'.repeat(60)}`);
    dns.setTxt('_x.big.test', [...many, 'the-one']);
    const res = await lookup('_x.big.test');
    expect(res.ok && res.records).toContain('the-one');
    expect(dns.queries).toContainEqual({ name: '_x.big.test', type: 'TXT', transport: 'tcp' });
  });

});
