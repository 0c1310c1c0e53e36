import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { findVerifiedDomain, isDomainVerifiedBy } from '../../src/domains/store.js';

/**
 * Domains end to end (SPEC §4.7, §11): every DNS lookup goes to a real DNS server on loopback,
 * pointed at through GATEHOUSE_DNS_SERVERS, whose records the tests publish and change.
 */
let dns: TestDnsServer;
let t: TestGatehouse;
let owner: TestUser;
let org: string;

const base = (o: string) => `/api/user/organizations/${o}/domains`;
const challenge = (domain: string) => `_gatehouse-challenge.${domain}`;

async function add(o: string, domain: string, as: TestUser = owner) {
  return t.request('POST', base(o), { as, body: { domain } });
}
async function addOk(o: string, domain: string, as: TestUser = owner) {
  const res = await add(o, domain, as);
  if (res.status !== 201) throw new Error(`add ${domain}: ${res.status} ${res.text}`);
  return res.body.data as { id: string; domain: string; verification: { name: string; value: string } };
}
async function verify(o: string, id: string, as: TestUser = owner) {
  return t.request('POST', `${base(o)}/${id}/verify`, { as });
}
async function auditActions(o: string) {
  const res = await t.request('GET', `/api/user/organizations/${o}/audit-log?limit=100`, { as: owner });
  return res.body.data.items as Array<{ action: string; target: { id: string } | null; metadata: Record<string, unknown> | null }>;
}

beforeAll(async () => {
  dns = await startDnsServer();
  t = await createTestGatehouse({ env: { GATEHOUSE_DNS_SERVERS: dns.address } });
  owner = await t.signUp('owner@acme.test');
  org = await createOrg(t, owner, 'Acme');
});
afterAll(async () => {
  await t?.destroy();
  await dns?.close();
});

describe('adding a domain', () => {
  it('answers 201 with the TXT record to publish (token of ≥128 bits) and audits domain.added', async () => {
    const res = await add(org, 'acme.test');
    expect(res.status).toBe(201);
    const d = res.body.data;
    expect(d).toMatchObject({
      organizationId: org, domain: 'acme.test', status: 'pending', verifiedAt: null, lastCheckedAt: null,
      settings: { autoJoin: false, requireApproval: false, role: 'member' },
      verification: { type: 'TXT', name: '_gatehouse-challenge.acme.test' },
    });
    const token = /^gatehouse-domain-verification=([A-Za-z0-9_-]+)$/.exec(d.verification.value)?.[1];
    expect(token).toBeDefined();
    expect(Buffer.from(token!, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    const other = await addOk(org, 'second.acme.test');
    expect(other.verification.value).not.toBe(d.verification.value);
    const events = await auditActions(org);
    expect(events.find((e) => e.action === 'domain.added' && e.target?.id === d.id)?.metadata).toEqual({ domain: 'acme.test' });
  });

  it('normalises: trims, lower-cases, converts IDNA to ASCII and drops the trailing dot', async () => {
    expect((await addOk(org, '  Bücher.Example. ')).domain).toBe('xn--bcher-kva.example');
    expect((await addOk(org, 'MiXeD.Case.TEST.')).domain).toBe('mixed.case.test');
  });

  it('refuses the same domain twice in one organization, however it is spelled, with 409 CONFLICT', async () => {
    await addOk(org, 'twice.test');
    for (const spelling of ['twice.test', 'TWICE.test.', ' twice.test ']) {
      const res = await add(org, spelling);
      expect(res.status, spelling).toBe(409);
      expect(res.body.code).toBe('CONFLICT');
    }
  });

  it('refuses anything that is not a hostname with 400 and says what to give instead', async () => {
    const cases: Array<[string, RegExp]> = [
      ['ada@acme.test', /email address/],
      ['https://acme.test/login', /URL/],
      ['acme.test/path', /URL/],
      ['acme.test:443', /IP address or host:port/],
      ['192.0.2.1', /IP address/],
      ['[::1]', /IP address/],
      ['a..b.test', /empty label/],
      ['.acme.test', /empty label/],
      ['under_score.test', /label "under_score"/],
      ['-dash.test', /label "-dash"/],
      ['*.acme.test', /wildcards/],
      ['ac me.test', /spaces/],
      ['%61cme.test', /%/],
      [`${'a'.repeat(64)}.test`, /1–63/],
      ['localhost', /at least two labels/],
      ['', /give a domain/],
    ];
    for (const [input, message] of cases) {
      const res = await add(org, input);
      expect(res.status, input).toBe(400);
      expect(res.body.code, input).toBe('VALIDATION_FAILED');
      expect(res.body.message, input).toMatch(message);
    }
    const extra = await t.request('POST', base(org), { as: owner, body: { domain: 'ok.test', verified: true } });
    expect(extra.status).toBe(400);
  });

  it('refuses mailbox providers and public suffixes with 422 GENERIC_DOMAIN', async () => {
    for (const domain of ['gmail.com', 'GMail.com.', 'outlook.com', 'yahoo.com', 'seznam.cz', '10minutemail.co.uk', 'com', 'co.uk', 'github.io', 'blogspot.com']) {
      const res = await add(org, domain);
      expect(res.status, domain).toBe(422);
      expect(res.body.code, domain).toBe('GENERIC_DOMAIN');
    }
    expect((await add(org, 'gmail.com')).body.message).toMatch(/mailbox provider/);
    expect((await add(org, 'github.io')).body.message).toMatch(/public suffix/);
    // A registrable name below a private suffix is somebody's own.
    expect((await add(org, 'acme.github.io')).status).toBe(201);
  });
});

describe('verifying a domain', () => {
  it('fails before the record is published (nxdomain, then no_record), succeeds once it is', async () => {
    const d = await addOk(org, 'publish.test');
    const name = challenge('publish.test');

    const before = await verify(org, d.id);
    expect(before.status).toBe(422);
    expect(before.body).toMatchObject({
      code: 'DOMAIN_VERIFICATION_FAILED',
      details: { reason: 'nxdomain', expected: { type: 'TXT', name, value: d.verification.value } },
    });
    expect(before.body.message).toContain(name);
    expect(dns.queries).toContainEqual({ name, type: 'TXT', transport: 'udp' });
    const checked = await t.request('GET', `${base(org)}/${d.id}`, { as: owner });
    expect(checked.body.data).toMatchObject({ status: 'pending', verifiedAt: null });
    expect(checked.body.data.lastCheckedAt).not.toBeNull();

    dns.addName(name); // e.g. a CNAME-less name with other records only
    const empty = await verify(org, d.id);
    expect(empty.status).toBe(422);
    expect(empty.body.details.reason).toBe('no_record');

    dns.setTxt(name, [d.verification.value]);
    t.clock.advance(1000);
    const ok = await verify(org, d.id);
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ status: 'verified', verifiedAt: t.clock.now().toISOString(), lastCheckedAt: t.clock.now().toISOString() });

    const events = (await auditActions(org)).filter((e) => e.target?.id === d.id).map((e) => [e.action, e.metadata?.reason]);
    expect(events).toEqual([
      ['domain.verified', undefined],
      ['domain.verification_failed', 'no_record'],
      ['domain.verification_failed', 'nxdomain'],
      ['domain.added', undefined],
    ]);
  });

  it('re-verifying a verified domain is a harmless 200 without a lookup', async () => {
    const d = await addOk(org, 'again.test');
    dns.setTxt(challenge('again.test'), [d.verification.value]);
    expect((await verify(org, d.id)).status).toBe(200);
    const queries = dns.queries.length;
    dns.remove(challenge('again.test'));
    const again = await verify(org, d.id);
    expect(again.status).toBe(200);
    expect(again.body.data.status).toBe('verified');
    expect(dns.queries.length).toBe(queries);
  });

  it('a wrong value fails with reason wrong_value and lists the values found', async () => {
    const d = await addOk(org, 'wrong.test');
    dns.setTxt(challenge('wrong.test'), ['v=spf1 -all', 'gatehouse-domain-verification=not-the-token']);
    const res = await verify(org, d.id);
    expect(res.status).toBe(422);
    expect(res.body.details).toMatchObject({ reason: 'wrong_value', expected: { value: d.verification.value } });
    expect(res.body.details.found).toEqual(expect.arrayContaining(['v=spf1 -all', 'gatehouse-domain-verification=not-the-token']));
    expect(res.body.message).toContain('gatehouse-domain-verification=not-the-token');
    expect((await t.request('GET', `${base(org)}/${d.id}`, { as: owner })).body.data.status).toBe('pending');
  });

  it('accepts the value among other TXT records, split into strings, or pasted with quotes', async () => {
    const a = await addOk(org, 'split.test');
    const [head, tail] = [a.verification.value.slice(0, 20), a.verification.value.slice(20)];
    dns.setTxt(challenge('split.test'), ['unrelated', [head, tail]]);
    expect((await verify(org, a.id)).status).toBe(200);
    const b = await addOk(org, 'quoted.test');
    dns.setTxt(challenge('quoted.test'), [`"${b.verification.value}"`]);
    expect((await verify(org, b.id)).status).toBe(200);
  });

  it('a record with the token of another domain does not verify this one', async () => {
    const a = await addOk(org, 'token-a.test');
    const b = await addOk(org, 'token-b.test');
    dns.setTxt(challenge('token-b.test'), [a.verification.value]);
    const res = await verify(org, b.id);
    expect(res.status).toBe(422);
    expect(res.body.details.reason).toBe('wrong_value');
  });

  it('a name server that never answers is reported as timeout', { timeout: 20_000 }, async () => {
    const d = await addOk(org, 'silent.test');
    dns.ignore(challenge('silent.test'));
    const res = await verify(org, d.id);
    expect(res.status).toBe(422);
    expect(res.body.details.reason).toBe('timeout');
    expect(res.body.message).toMatch(/timed out/);
    expect(dns.queries.some((q) => q.name === challenge('silent.test'))).toBe(true);
  });

  it('a failing name server (SERVFAIL) is reported as dns_error', async () => {
    const d = await addOk(org, 'servfail.test');
    dns.fail(challenge('servfail.test'));
    const res = await verify(org, d.id);
    expect(res.status).toBe(422);
    expect(res.body.details).toMatchObject({ reason: 'dns_error', dnsError: 'ESERVFAIL' });
  });
});

describe('one verified owner per domain', () => {
  it('two organizations verifying the same domain at once: exactly one 200, one 409 DOMAIN_TAKEN', async () => {
    for (let round = 0; round < 3; round++) {
      const domain = `race${round}.test`;
      const ownerB = await t.signUp(`owner${round}@b.race.test`);
      const ownerC = await t.signUp(`owner${round}@c.race.test`);
      const orgB = await createOrg(t, ownerB, `B${round}`);
      const orgC = await createOrg(t, ownerC, `C${round}`);
      const b = await addOk(orgB, domain, ownerB);
      const c = await addOk(orgC, domain, ownerC);
      // Both organizations publish their record: both checks succeed; the database picks one.
      dns.setTxt(challenge(domain), [b.verification.value, c.verification.value]);
      // Neither gets its DNS answer before both have asked: both pass the early check and race to the UPDATE.
      dns.barrier(challenge(domain), 2);
      const results = await Promise.all([verify(orgB, b.id, ownerB), verify(orgC, c.id, ownerC)]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      expect(results.find((r) => r.status === 409)?.body.code).toBe('DOMAIN_TAKEN');
      const rows = await t.deps.db.selectFrom('domains').select(['organization_id', 'status']).where('domain', '=', domain).execute();
      expect(rows.filter((r) => r.status === 'verified')).toHaveLength(1);
      expect(rows).toHaveLength(2);

      // Both looked the record up; the unique index, not the early check, settled it.
      expect(dns.queries.filter((q) => q.name === challenge(domain))).toHaveLength(2);
      const loser = results[0]!.status === 409 ? { org: orgB, id: b.id, as: ownerB } : { org: orgC, id: c.id, as: ownerC };
      const lost = await t.deps.db.selectFrom('audit_events').select('metadata').where('target_id', '=', loser.id).where('action', '=', 'domain.verification_failed').execute();
      expect(lost.map((e) => JSON.parse(e.metadata ?? '{}').reason)).toEqual(['domain_taken']);

      // The loser asking again gets the same answer, without another lookup.
      const again = await verify(loser.org, loser.id, loser.as);
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('DOMAIN_TAKEN');
    }
  });

  it('a double-clicked verify in one organization: both 200, one domain.verified event', async () => {
    const d = await addOk(org, 'double.test');
    dns.setTxt(challenge('double.test'), [d.verification.value]);
    const results = await Promise.all([verify(org, d.id), verify(org, d.id)]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(results.map((r) => r.body.data.status)).toEqual(['verified', 'verified']);
    const events = await t.deps.db.selectFrom('audit_events').select('action').where('target_id', '=', d.id).where('action', '=', 'domain.verified').execute();
    expect(events).toHaveLength(1);
  });

  it('adding a domain another organization verified is 409 DOMAIN_TAKEN; pending claims may coexist', async () => {
    const ownerX = await t.signUp('owner@x.claim.test');
    const orgX = await createOrg(t, ownerX, 'X');
    const ownerY = await t.signUp('owner@y.claim.test');
    const orgY = await createOrg(t, ownerY, 'Y');
    const x = await addOk(orgX, 'claimed.test', ownerX);
    await addOk(orgY, 'claimed.test', ownerY); // both pending: allowed
    dns.setTxt(challenge('claimed.test'), [x.verification.value]);
    expect((await verify(orgX, x.id, ownerX)).status).toBe(200);
    expect((await findVerifiedDomain(t.deps.db, 'claimed.test'))?.organization_id).toBe(orgX);
    expect(await isDomainVerifiedBy(t.deps.db, orgX, 'claimed.test')).toBe(true);
    expect(await isDomainVerifiedBy(t.deps.db, orgY, 'claimed.test')).toBe(false);
    const ownerZ = await t.signUp('owner@z.claim.test');
    const orgZ = await createOrg(t, ownerZ, 'Z');
    for (const spelling of ['claimed.test', 'CLAIMED.test.']) {
      const res = await add(orgZ, spelling, ownerZ);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('DOMAIN_TAKEN');
    }
    // Once the owner removes it, the domain is free again.
    expect((await t.request('DELETE', `${base(orgX)}/${x.id}`, { as: ownerX })).status).toBe(200);
    const z = await addOk(orgZ, 'claimed.test', ownerZ);
    dns.setTxt(challenge('claimed.test'), [z.verification.value]);
    expect((await verify(orgZ, z.id, ownerZ)).status).toBe(200);
    expect((await findVerifiedDomain(t.deps.db, 'claimed.test'))?.organization_id).toBe(orgZ);
  });
});

describe('reading, removing, settings', () => {
  it('lists newest first with limit and cursor', async () => {
    const o = await createOrg(t, owner, 'Lister');
    const made = [await addOk(o, 'l1.test'), await addOk(o, 'l2.test'), await addOk(o, 'l3.test')];
    const p1 = await t.request('GET', `${base(o)}?limit=2`, { as: owner });
    expect(p1.status).toBe(200);
    expect(p1.body.data.items.map((d: { domain: string }) => d.domain)).toEqual(['l3.test', 'l2.test']);
    expect(p1.body.data.nextCursor).toBe(made[1]!.id);
    const p2 = await t.request('GET', `${base(o)}?limit=2&cursor=${p1.body.data.nextCursor}`, { as: owner });
    expect(p2.body.data).toEqual({ items: [expect.objectContaining({ domain: 'l1.test', verification: made[0]!.verification })], nextCursor: null });
    expect((await t.request('GET', `${base(o)}?limit=0`, { as: owner })).status).toBe(400);
  });

  it("a domain id of another organization answers 404 through one's own organization", async () => {
    const ownerB = await t.signUp('owner@idor.test');
    const orgB = await createOrg(t, ownerB, 'Idor');
    const theirs = await addOk(orgB, 'idor.test', ownerB);
    const mine = await createOrg(t, owner, 'Mine');
    for (const [method, path, body] of [
      ['GET', `${base(mine)}/${theirs.id}`],
      ['DELETE', `${base(mine)}/${theirs.id}`],
      ['POST', `${base(mine)}/${theirs.id}/verify`],
      ['PUT', `${base(mine)}/${theirs.id}/settings`, { autoJoin: false }],
    ] as const) {
      const res = await t.request(method, path, { as: owner, body });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await t.request('GET', `${base(orgB)}/${theirs.id}`, { as: ownerB })).status).toBe(200);
  });

  it('removes a domain and audits domain.removed', async () => {
    const d = await addOk(org, 'remove-me.test');
    const del = await t.request('DELETE', `${base(org)}/${d.id}`, { as: owner });
    expect(del.status).toBe(200);
    expect((await t.request('GET', `${base(org)}/${d.id}`, { as: owner })).status).toBe(404);
    expect((await t.request('DELETE', `${base(org)}/${d.id}`, { as: owner })).status).toBe(404);
    const ev = (await auditActions(org)).find((e) => e.action === 'domain.removed' && e.target?.id === d.id);
    expect(ev?.metadata).toEqual({ domain: 'remove-me.test', status: 'pending' });
  });

  it('settings: defaults, auto-join only on a verified domain, never owner, audited', async () => {
    const d = await addOk(org, 'settings.test');
    const path = `${base(org)}/${d.id}/settings`;
    const early = await t.request('PUT', path, { as: owner, body: { autoJoin: true } });
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('DOMAIN_NOT_VERIFIED');

    dns.setTxt(challenge('settings.test'), [d.verification.value]);
    expect((await verify(org, d.id)).status).toBe(200);

    const set = await t.request('PUT', path, { as: owner, body: { autoJoin: true, requireApproval: true, role: 'admin' } });
    expect(set.status).toBe(200);
    expect(set.body.data.settings).toEqual({ autoJoin: true, requireApproval: true, role: 'admin' });
    expect((await t.request('GET', `${base(org)}/${d.id}`, { as: owner })).body.data.settings).toEqual({ autoJoin: true, requireApproval: true, role: 'admin' });

    const owners = await t.request('PUT', path, { as: owner, body: { autoJoin: true, role: 'owner' } });
    expect(owners.status).toBe(400);
    expect(owners.body.code).toBe('VALIDATION_FAILED');
    expect(owners.body.details.issues[0]).toMatchObject({ path: 'role' });
    expect(owners.body.details.issues[0].message).toMatch(/owner/);
    expect((await t.request('PUT', path, { as: owner, body: { autoJoin: 'yes' } })).status).toBe(400);
    expect((await t.request('PUT', path, { as: owner, body: { autoJoin: true, extra: 1 } })).status).toBe(400);

    // PUT replaces: omitted fields return to their defaults.
    const reset = await t.request('PUT', path, { as: owner, body: {} });
    expect(reset.body.data.settings).toEqual({ autoJoin: false, requireApproval: false, role: 'member' });

    const events = (await auditActions(org)).filter((e) => e.action === 'domain.settings_updated' && e.target?.id === d.id);
    expect(events.map((e) => e.metadata)).toEqual([
      { domain: 'settings.test', from: { autoJoin: true, requireApproval: true, role: 'admin' }, to: { autoJoin: false, requireApproval: false, role: 'member' } },
      { domain: 'settings.test', from: { autoJoin: false, requireApproval: false, role: 'member' }, to: { autoJoin: true, requireApproval: true, role: 'admin' } },
    ]);
  });

  it('an admin manages domains; a plain member cannot; an API key works', async () => {
    const admin = await t.signUp('admin@acme.test');
    const member = await t.signUp('member@acme.test');
    await addMember(t, owner, org, admin, 'admin');
    await addMember(t, owner, org, member, 'member');
    expect((await add(org, 'by-admin.test', admin)).status).toBe(201);
    const res = await add(org, 'by-member.test', member);
    expect(res.status).toBe(403);
    expect((await t.request('GET', base(org), { as: member })).status).toBe(403);
    const { key } = await createApiKey(t, owner, { name: 'domains', organizationId: org });
    const viaKey = await t.request('POST', base(org), { apiKey: key, body: { domain: 'by-key.test' } });
    expect(viaKey.status).toBe(201);
  });
});

describe('rate limit', () => {
  it('verification is rate-limited per organization: 429 with Retry-After, and no lookup', async () => {
    const dns2 = await startDnsServer();
    const limited = await createTestGatehouse({
      env: { GATEHOUSE_DNS_SERVERS: dns2.address },
      rateLimits: { 'domain-verify:organization': { points: 2, duration: 600 } },
    });
    try {
      const o = await limited.signUp('owner@limited.test');
      const res = await limited.request('POST', '/api/user/organizations', { as: o, body: { name: 'Limited' } });
      const orgId = res.body.data.id as string;
      const d = (await limited.request('POST', base(orgId), { as: o, body: { domain: 'limited.test' } })).body.data;
      for (let i = 0; i < 2; i++) expect((await limited.request('POST', `${base(orgId)}/${d.id}/verify`, { as: o })).status).toBe(422);
      expect(dns2.queries).toHaveLength(2);
      const third = await limited.request('POST', `${base(orgId)}/${d.id}/verify`, { as: o });
      expect(third.status).toBe(429);
      expect(third.body.code).toBe('RATE_LIMITED');
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(dns2.queries).toHaveLength(2);
    } finally {
      await limited.destroy();
      await dns2.close();
    }
  });
});
