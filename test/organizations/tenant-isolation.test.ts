import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { generateSpKeyPair } from '../../src/sso/saml/certs.js';

/**
 * Every tenant-scoped endpoint, with the least role allowed to call it. The last test checks this
 * table against the OpenAPI document, so a new tenant-scoped route cannot be added without
 * its isolation being tested here.
 */
type Role = 'owner' | 'admin' | 'member';
interface Endpoint {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string; // {org} = organization id; other ids filled by `ids`
  minRole: Role;
  body?: unknown;
}
const FAKE = '01HZ3K5R4X9Y2V6QF8TJ7W0CDN';
/** A valid IdP certificate, so a SAML PUT passes validation and reaches the access check. */
const SAML_IDP_CERT = (await generateSpKeyPair('tenant-isolation IdP', new Date())).certificatePem;

const ENDPOINTS: Endpoint[] = [
  { method: 'GET', path: '/api/user/organizations/{org}', minRole: 'member' },
  { method: 'PATCH', path: '/api/user/organizations/{org}', minRole: 'owner', body: { name: 'Hacked' } },
  { method: 'DELETE', path: '/api/user/organizations/{org}', minRole: 'owner' },
  { method: 'GET', path: '/api/user/organizations/{org}/members', minRole: 'admin' },
  { method: 'PATCH', path: '/api/user/organizations/{org}/members/{target}', minRole: 'admin', body: { role: 'admin' } },
  { method: 'DELETE', path: '/api/user/organizations/{org}/members/{target}', minRole: 'admin' },
  { method: 'POST', path: '/api/user/organizations/{org}/invitations', minRole: 'admin', body: { email: 'x@evil.test', role: 'member' } },
  { method: 'GET', path: '/api/user/organizations/{org}/invitations', minRole: 'admin' },
  { method: 'DELETE', path: `/api/user/organizations/{org}/invitations/${FAKE}`, minRole: 'admin' },
  { method: 'GET', path: '/api/user/organizations/{org}/audit-log', minRole: 'admin' },
  { method: 'GET', path: '/api/user/organizations/{org}/settings/sso', minRole: 'owner' },
  { method: 'PUT', path: '/api/user/organizations/{org}/settings/sso', minRole: 'owner', body: { provider: 'oidc', issuerUrl: 'https://idp.example.com', clientId: 'x', clientSecret: 'y' } },
  { method: 'PUT', path: '/api/user/organizations/{org}/settings/sso', minRole: 'owner', body: { provider: 'saml', idpEntityId: 'https://idp.example.com/saml', idpSsoUrl: 'https://idp.example.com/sso', idpCertificate: SAML_IDP_CERT } },
  { method: 'DELETE', path: '/api/user/organizations/{org}/settings/sso', minRole: 'owner' },
  { method: 'POST', path: '/api/user/organizations/{org}/settings/sso/test', minRole: 'owner' },
  { method: 'POST', path: '/api/user/organizations/{org}/settings/sso/test', minRole: 'owner', body: { provider: 'oidc', issuerUrl: 'https://idp.example.com', clientId: 'x' } },
  { method: 'GET', path: '/api/user/organizations/{org}/settings/sso/service-provider', minRole: 'owner' },
  { method: 'POST', path: '/api/user/organizations/{org}/setup-links', minRole: 'admin', body: { scope: ['domains'] } },
  { method: 'GET', path: '/api/user/organizations/{org}/setup-links', minRole: 'admin' },
  { method: 'DELETE', path: `/api/user/organizations/{org}/setup-links/${FAKE}`, minRole: 'admin' },
  { method: 'GET', path: '/api/user/organizations/{org}/sso/identities', minRole: 'admin' },
  { method: 'GET', path: '/api/user/organizations/{org}/settings/security', minRole: 'owner' },
  { method: 'PUT', path: '/api/user/organizations/{org}/settings/security', minRole: 'owner', body: { authRequired: 'mfa', requireMfa: true } },
  { method: 'GET', path: '/api/user/organizations/{org}/members/requests', minRole: 'admin' },
  { method: 'POST', path: `/api/user/organizations/{org}/members/requests/${FAKE}/approve`, minRole: 'admin' },
  { method: 'POST', path: `/api/user/organizations/{org}/members/requests/${FAKE}/reject`, minRole: 'admin' },
  { method: 'DELETE', path: `/api/user/organizations/{org}/sso/identities/${FAKE}`, minRole: 'admin' },
  { method: 'GET', path: `/api/user/organizations/{org}/sso/identities/${FAKE}/idp-token`, minRole: 'admin' },
  { method: 'POST', path: '/api/user/organizations/{org}/domains', minRole: 'admin', body: { domain: 'evil.test' } },
  { method: 'GET', path: '/api/user/organizations/{org}/domains', minRole: 'admin' },
  { method: 'GET', path: `/api/user/organizations/{org}/domains/${FAKE}`, minRole: 'admin' },
  { method: 'DELETE', path: `/api/user/organizations/{org}/domains/${FAKE}`, minRole: 'admin' },
  { method: 'POST', path: `/api/user/organizations/{org}/domains/${FAKE}/verify`, minRole: 'admin' },
  { method: 'PUT', path: `/api/user/organizations/{org}/domains/${FAKE}/settings`, minRole: 'admin', body: { autoJoin: true, role: 'admin' } },
];

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

let t: TestGatehouse;
let ownerA: TestUser;
let ownerB: TestUser;
let memberB: TestUser;
let targetB: TestUser;
let orgA: string;
let orgB: string;
let keyPinnedA: string;

beforeAll(async () => {
  t = await createTestGatehouse();
  ownerA = await t.signUp('owner@a.test');
  ownerB = await t.signUp('owner@b.test');
  memberB = await t.signUp('member@b.test');
  targetB = await t.signUp('target@b.test');
  orgA = await createOrg(t, ownerA, 'Org A');
  orgB = await createOrg(t, ownerB, 'Org B');
  await addMember(t, ownerB, orgB, memberB, 'member');
  await addMember(t, ownerB, orgB, targetB, 'member');
  keyPinnedA = (await createApiKey(t, ownerA, { name: 'pinned to A', organizationId: orgA })).key;
});
afterAll(async () => {
  await t.destroy();
});

const fill = (path: string, org: string) => path.replace('{org}', org).replace('{target}', targetB?.id ?? FAKE);

async function orgBUnchanged() {
  const org = await t.deps.db.selectFrom('organizations').selectAll().where('id', '=', orgB).executeTakeFirst();
  expect(org?.name).toBe('Org B');
  const members = await t.deps.db.selectFrom('members').select(['user_id', 'role']).where('organization_id', '=', orgB).execute();
  expect(members).toHaveLength(3);
  expect(members.find((m) => m.user_id === targetB.id)?.role).toBe('member');
}

describe('tenant isolation', () => {
  for (const ep of ENDPOINTS) {
    it(`member of org A gets 404 on org B: ${ep.method} ${ep.path}`, async () => {
      const res = await t.request(ep.method, fill(ep.path, orgB), { as: ownerA, body: ep.body });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('NOT_FOUND');
      expect(res.text).not.toContain('Org B');
      await orgBUnchanged();
    });

    it(`API key pinned to org A gets 403 on org B: ${ep.method} ${ep.path}`, async () => {
      const res = await t.request(ep.method, fill(ep.path, orgB), { apiKey: keyPinnedA, body: ep.body });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('FORBIDDEN');
      await orgBUnchanged();
    });

    it(`unknown organization answers 404 like a foreign one: ${ep.method} ${ep.path}`, async () => {
      const res = await t.request(ep.method, fill(ep.path, FAKE), { as: ownerA, body: ep.body });
      expect(res.status).toBe(404);
    });

    if (RANK[ep.minRole] > RANK.member) {
      it(`a plain member gets 403 on ${ep.minRole}-only ${ep.method} ${ep.path}`, async () => {
        const res = await t.request(ep.method, fill(ep.path, orgB), { as: memberB, body: ep.body });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('FORBIDDEN');
        await orgBUnchanged();
      });
    }
  }

  it('an admin gets 403 on owner-only endpoints', async () => {
    const admin = await t.signUp('admin@b.test');
    await addMember(t, ownerB, orgB, admin, 'admin');
    for (const ep of ENDPOINTS.filter((e) => e.minRole === 'owner')) {
      const res = await t.request(ep.method, fill(ep.path, orgB), { as: admin, body: ep.body });
      expect(res.status, `${ep.method} ${ep.path}`).toBe(403);
    }
    await t.request('DELETE', `/api/user/organizations/${orgB}/members/${admin.id}`, { as: ownerB });
  });

  it('the table above covers every tenant-scoped route of the OpenAPI document', async () => {
    const doc = (await t.request('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/user/organizations/{organizationId}')) continue;
      for (const method of Object.keys(ops)) documented.push(`${method.toUpperCase()} ${path.replace(/\{(?!organizationId)[^}]+\}/g, '*')}`);
    }
    const tested = ENDPOINTS.map((e) => `${e.method} ${e.path.replace('{org}', '{organizationId}').replace(/\{target\}|[0-9A-HJKMNP-TV-Z]{26}/g, '*')}`);
    expect([...new Set(documented)].sort()).toEqual([...new Set(tested)].sort());
  });
});
