import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { acsForm, buildResponse, createTestSamlIdp } from '../helpers/saml-sign.js';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/*
 * SPEC §3 and §12: every list endpoint takes `?limit=` (1–100, default 20) and `?cursor=`, and
 * answers `data: {items, nextCursor}`. Each one is walked page by page here; and the OpenAPI
 * document is checked so a new list endpoint cannot ship without being in this table.
 */
const N = 5;
const PAGE = 2;

let t: TestGatehouse;
let owner: TestUser;
let root: TestUser;
let orgId: string;
const ORG = () => `/api/user/organizations/${orgId}`;

interface ListCase {
  path: () => string;
  /** The OpenAPI path of the route. */
  route: string;
  as: () => TestUser;
  key: (item: Record<string, unknown>) => string;
  /** At least this many items were seeded (so the walk has ≥ 3 pages). */
  atLeast: number;
}
const byId = (i: Record<string, unknown>) => i.id as string;
const LISTS: ListCase[] = [
  { route: '/api/user/api-keys', path: () => '/api/user/api-keys', as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/sessions', path: () => '/api/user/sessions', as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations', path: () => '/api/user/organizations', as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/domains', path: () => `${ORG()}/domains`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/members', path: () => `${ORG()}/members`, as: () => owner, key: (i) => i.userId as string, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/invitations', path: () => `${ORG()}/invitations`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/members/requests', path: () => `${ORG()}/members/requests`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/audit-log', path: () => `${ORG()}/audit-log`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/sso/identities', path: () => `${ORG()}/sso/identities`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/user/organizations/{organizationId}/setup-links', path: () => `${ORG()}/setup-links`, as: () => owner, key: byId, atLeast: N },
  { route: '/api/admin/organizations', path: () => '/api/admin/organizations', as: () => root, key: byId, atLeast: N },
  { route: '/api/admin/clients', path: () => '/api/admin/clients', as: () => root, key: (i) => i.clientId as string, atLeast: N },
];

beforeAll(async () => {
  t = await createTestGatehouse();
  owner = await t.signUp('owner@lists.test');
  orgId = await createOrg(t, owner, 'Lists', 'lists');
  for (let i = 1; i < N; i++) await createOrg(t, owner, `Lists ${i}`);
  for (let i = 0; i < N; i++) await createApiKey(t, owner, { name: `key ${i}` });
  for (let i = 0; i < N; i++) {
    const res = await t.request('POST', '/api/auth/sign-in/email', { body: { email: owner.email, password: owner.password }, ip: `127.0.3.${i + 1}` });
    expect(res.status).toBe(200);
  }
  for (let i = 0; i < N; i++) expect((await t.request('POST', `${ORG()}/domains`, { as: owner, body: { domain: `lists${i}.example.org` } })).status).toBe(201);
  for (let i = 1; i < N; i++) await addMember(t, owner, orgId, await t.signUp(`member${i}@lists.test`), 'member');
  for (let i = 0; i < N; i++) expect((await t.request('POST', `${ORG()}/setup-links`, { as: owner, body: { scope: ['domains'] } })).status).toBe(201);
  for (let i = 0; i < N; i++) expect((await t.request('POST', `${ORG()}/invitations`, { as: owner, body: { email: `invitee${i}@lists.test`, role: 'member' } })).status).toBe(201);
  // Join requests come from auto-join with approval on a verified domain (DNS); their list is what
  // is under test here, so the pending rows are written directly.
  for (let i = 0; i < N; i++) {
    const user = await t.signUp(`requester${i}@lists.test`);
    await t.deps.db.insertInto('join_requests').values({ id: newId(), organization_id: orgId, user_id: user.id, domain_id: null, status: 'pending', decided_by: null, decided_at: null, created_at: t.clock.now().toISOString() }).execute();
  }
  // SSO identities from real IdP-initiated SAML logins.
  const idp = await createTestSamlIdp('https://idp.lists.test/saml/metadata', 'https://idp.lists.test/saml/sso');
  const put = await t.request('PUT', `${ORG()}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: idp.certificatePem, allowIdpInitiated: true },
  });
  expect(put.status, put.text).toBe(200);
  for (let i = 0; i < N; i++) {
    const response = await buildResponse({
      idp, acsUrl: put.body.data.acsUrl, audience: put.body.data.spEntityId, nameId: `sso${i}@lists.test`,
      nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', inResponseTo: null, now: t.clock.now(),
    });
    const acs = await t.request('POST', '/api/auth/sso/lists/saml/acs', {
      rawBody: acsForm(response), origin: 'https://idp.lists.test', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(acs.status, acs.text).toBe(302);
  }
  const { user } = await t.services.accounts.createSuperadmin({ email: 'root@lists.test', password: 'root password long' });
  const login = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'root@lists.test', password: 'root password long' } });
  root = { cookie: login.cookie!, id: user.id, email: user.email, password: '' };
  for (let i = 0; i < N; i++) {
    const res = await t.request('POST', '/api/admin/clients', { as: root, body: { name: `app ${i}`, redirectUris: [`https://app${i}.lists.test/cb`] } });
    expect(res.status, res.text).toBe(201);
  }
});
afterAll(async () => {
  await t.destroy();
});

async function getPage(c: ListCase, query: string) {
  const res = await t.request('GET', `${c.path()}${query}`, { as: c.as() });
  expect(res.status, `${c.route}${query}: ${res.text}`).toBe(200);
  expect(Object.keys(res.body.data).sort()).toEqual(['items', 'nextCursor']);
  return res.body.data as { items: Array<Record<string, unknown>>; nextCursor: string | null };
}

describe('every list endpoint pages with limit and cursor (SPEC §3)', () => {
  for (const c of LISTS) {
    it(`${c.route}: walking pages of ${PAGE} returns every item once, in the order of one big page, and ends with nextCursor null`, async () => {
      const all = await getPage(c, '?limit=100');
      expect(all.items.length).toBeGreaterThanOrEqual(c.atLeast);
      expect(all.nextCursor).toBeNull();
      const walked: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await getPage(c, `?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.items.length).toBeLessThanOrEqual(PAGE);
        if (page.nextCursor) expect(page.items.length).toBe(PAGE);
        walked.push(...page.items.map(c.key));
        cursor = page.nextCursor;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (cursor);
      expect(walked).toEqual(all.items.map(c.key));
      expect(new Set(walked).size).toBe(walked.length);
      expect(pages).toBe(Math.ceil(all.items.length / PAGE));
    });

    it(`${c.route}: refuses limit 0, limit 101, a malformed cursor and unknown query fields (400)`, async () => {
      for (const q of ['?limit=0', '?limit=101', '?limit=abc', '?cursor=zzz', '?bogus=1']) {
        const res = await t.request('GET', `${c.path()}${q}`, { as: c.as() });
        expect(res.status, `${c.route}${q}`).toBe(400);
        expect(res.body.code).toBe('VALIDATION_FAILED');
      }
    });
  }

  it('the default limit is 20', async () => {
    for (let i = 0; i < 20; i++) await createApiKey(t, owner, { name: `more ${i}` });
    const page = await getPage(LISTS[0]!, '');
    expect(page.items).toHaveLength(20);
    expect(page.nextCursor).not.toBeNull();
  });

  it('the OpenAPI document lists exactly these list endpoints, each with limit, cursor and {items, nextCursor}', async () => {
    const doc = (await t.request('GET', '/api/openapi.json')).body;
    const lists: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) { // eslint-disable-line @typescript-eslint/no-explicit-any
      const get = ops.get;
      const data = get?.responses?.['200']?.content?.['application/json']?.schema?.properties?.data;
      if (!data?.properties?.items) continue;
      lists.push(path);
      expect(Object.keys(data.properties).sort(), path).toEqual(['items', 'nextCursor']);
      expect(data.required, path).toEqual(expect.arrayContaining(['items', 'nextCursor']));
      const params = (get.parameters ?? []).filter((p: { in: string }) => p.in === 'query').map((p: { name: string }) => p.name);
      expect(params, path).toEqual(expect.arrayContaining(['limit', 'cursor']));
    }
    expect(lists.sort()).toEqual(LISTS.map((c) => c.route).sort());
  });
});
