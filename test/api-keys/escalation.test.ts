import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/**
 * SPEC §12: an API key can only mint keys no stronger than itself (same pin, a subset of its
 * scopes), and a pinned key lists only its organization, also on admin routes.
 */
let t: TestGatehouse;
let owner: TestUser;
let orgA: string;
let orgB: string;
beforeAll(async () => {
  t = await createTestGatehouse();
  owner = await t.signUp('owner@escalate.test');
  orgA = await createOrg(t, owner, 'Escalate A');
  orgB = await createOrg(t, owner, 'Escalate B');
});
afterAll(async () => {
  await t.destroy();
});

const mint = (apiKey: string, body: Record<string, unknown>) => t.request('POST', '/api/user/api-keys', { apiKey, body });

describe('API key escalation', () => {
  it('a key pinned to one organization cannot mint an unpinned key and then read and delete another organization', async () => {
    const { key: pinned } = await createApiKey(t, owner, { name: 'pinned A', organizationId: orgA });
    const unpinned = await mint(pinned, { name: 'escape' });
    expect(unpinned.status).toBe(403);
    expect(unpinned.body.code).toBe('FORBIDDEN');
    const elsewhere = await mint(pinned, { name: 'escape to B', organizationId: orgB });
    expect(elsewhere.status).toBe(403);
    expect(await t.deps.db.selectFrom('api_keys').select('id').where('name', 'in', ['escape', 'escape to B']).execute()).toEqual([]);
    // The organization it could have reached stays out of reach and alive.
    expect((await t.request('GET', `/api/user/organizations/${orgB}`, { apiKey: pinned })).status).toBe(403);
    expect((await t.request('DELETE', `/api/user/organizations/${orgB}`, { apiKey: pinned })).status).toBe(403);
    expect((await t.request('GET', `/api/user/organizations/${orgB}`, { as: owner })).status).toBe(200);
  });

  it("a key pinned to one organization cannot read the user's sessions everywhere (IPs, user agents, other organizations' SSO) nor sign the user out of them", async () => {
    const { key: pinned } = await createApiKey(t, owner, { name: 'pinned A (sessions)', organizationId: orgA });
    const listed = await t.request('GET', '/api/user/sessions', { apiKey: pinned });
    expect(listed.status).toBe(403);
    expect(listed.body).toMatchObject({ code: 'FORBIDDEN', message: "A key pinned to an organization cannot manage the user's sessions" });
    expect(listed.text).not.toContain('127.0.');
    const session = (await t.request('GET', '/api/auth/session', { as: owner })).body.data.session.id as string;
    const killed = await t.request('DELETE', `/api/user/sessions/${session}`, { apiKey: pinned });
    expect(killed.status).toBe(403);
    expect(killed.body.code).toBe('FORBIDDEN');
    expect((await t.request('GET', '/api/auth/session', { as: owner })).status).toBe(200);
    // Control: an unpinned key of the same user may (they are the user's), so the refusal is the pin's.
    const { key: unpinned } = await createApiKey(t, owner, { name: 'unpinned (sessions)' });
    const all = await t.request('GET', '/api/user/sessions', { apiKey: unpinned });
    expect(all.status).toBe(200);
    expect(all.body.data.items.map((s: { id: string }) => s.id)).toContain(session);
  });

  it('a pinned key may mint a key pinned to the same organization, and that key is pinned too', async () => {
    const { key: pinned } = await createApiKey(t, owner, { name: 'pinned A', organizationId: orgA });
    const child = await mint(pinned, { name: 'child of A', organizationId: orgA });
    expect(child.status).toBe(201);
    expect(child.body.data.apiKey.organizationId).toBe(orgA);
    expect((await t.request('GET', `/api/user/organizations/${orgB}`, { apiKey: child.body.data.key })).status).toBe(403);
  });

  it('a key holding only user:write cannot mint an unscoped key or one with organizations/admin scopes', async () => {
    const { key: userWrite } = await createApiKey(t, owner, { name: 'user:write only', scopes: ['user:write'] });
    expect((await t.request('GET', `/api/user/organizations/${orgB}`, { apiKey: userWrite })).status).toBe(403);
    const full = await mint(userWrite, { name: 'full' });
    expect(full.status).toBe(403);
    for (const scopes of [['organizations:read'], ['organizations:write'], ['admin:read'], ['user:write', 'admin:write']]) {
      const res = await mint(userWrite, { name: 'wider', scopes });
      expect(res.status, JSON.stringify(scopes)).toBe(403);
    }
    expect(await t.deps.db.selectFrom('api_keys').select('id').where('name', 'in', ['full', 'wider']).execute()).toEqual([]);
  });

  it('a subset of scopes respects write-implies-read: user:write may mint user:read and user:write, organizations:read may not mint organizations:write', async () => {
    const { key: userWrite } = await createApiKey(t, owner, { name: 'uw', scopes: ['user:write'] });
    const read = await mint(userWrite, { name: 'ur', scopes: ['user:read'] });
    expect(read.status).toBe(201);
    expect(read.body.data.apiKey.scopes).toEqual(['user:read']);
    expect((await mint(userWrite, { name: 'uw2', scopes: ['user:read', 'user:write'] })).status).toBe(201);
    // A read-only key cannot call the (write) mint endpoint at all, so cannot widen itself.
    const { key: orgRead } = await createApiKey(t, owner, { name: 'or', scopes: ['organizations:read', 'user:write'] });
    expect((await mint(orgRead, { name: 'ow', scopes: ['organizations:write'] })).status).toBe(403);
    expect((await mint(orgRead, { name: 'or2', scopes: ['organizations:read'] })).status).toBe(201);
  });

  it('a key with an expiry cannot mint a key that outlives it', async () => {
    const expiresAt = new Date(t.clock.now().getTime() + 3600_000).toISOString();
    const { key } = await createApiKey(t, owner, { name: 'short-lived', expiresAt });
    expect((await mint(key, { name: 'forever' })).status).toBe(403);
    expect((await mint(key, { name: 'longer', expiresAt: new Date(t.clock.now().getTime() + 7200_000).toISOString() })).status).toBe(403);
    expect((await mint(key, { name: 'shorter', expiresAt: new Date(t.clock.now().getTime() + 1800_000).toISOString() })).status).toBe(201);
  });

  it('a pinned key lists only its organization on GET /api/user/organizations', async () => {
    const { key } = await createApiKey(t, owner, { name: 'pinned list', organizationId: orgA });
    const res = await t.request('GET', '/api/user/organizations', { apiKey: key });
    expect(res.status).toBe(200);
    expect(res.body.data.items.map((o: { id: string }) => o.id)).toEqual([orgA]);
    expect(res.body.data.nextCursor).toBeNull();
    const all = await t.request('GET', '/api/user/organizations?limit=100', { as: owner });
    expect(all.body.data.items.map((o: { id: string }) => o.id)).toEqual(expect.arrayContaining([orgA, orgB]));
  });

  it("a superadmin's pinned key lists only its organization on GET /api/admin/organizations", async () => {
    const { user } = await t.services.accounts.createSuperadmin({ email: 'root@escalate.test', password: 'root password long' });
    const login = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'root@escalate.test', password: 'root password long' } });
    const root = { cookie: login.cookie!, id: user.id, email: user.email, password: '' };
    const rootOrg = await createOrg(t, root, 'Root Home');
    const { key } = await createApiKey(t, root, { name: 'root pinned', organizationId: rootOrg });
    const pinnedList = await t.request('GET', '/api/admin/organizations?limit=100', { apiKey: key });
    expect(pinnedList.status).toBe(200);
    expect(pinnedList.body.data.items.map((o: { id: string }) => o.id)).toEqual([rootOrg]);
    // It still cannot act on another organization through the superadmin bypass.
    expect((await t.request('GET', `/api/user/organizations/${orgA}/members`, { apiKey: key })).status).toBe(403);
    const { key: unpinned } = await createApiKey(t, root, { name: 'root unpinned' });
    const full = await t.request('GET', '/api/admin/organizations?limit=100', { apiKey: unpinned });
    expect(full.body.data.items.map((o: { id: string }) => o.id)).toEqual(expect.arrayContaining([rootOrg, orgA, orgB]));
  });

  it('a pinned key cannot accept an invitation into another organization', async () => {
    const invitee = await t.signUp('invitee@escalate.test');
    const home = await createOrg(t, invitee, 'Invitee Home');
    const { key } = await createApiKey(t, invitee, { name: 'invitee pinned', organizationId: home });
    const inv = await t.request('POST', `/api/user/organizations/${orgB}/invitations`, { as: owner, body: { email: invitee.email, role: 'admin' } });
    expect(inv.status).toBe(201);
    const token = /\/invitations\/([A-Za-z0-9_-]+)$/m.exec(t.mails.findLast((m) => m.to === invitee.email)!.text)![1]!;
    const accepted = await t.request('POST', `/api/user/invitations/${token}/accept`, { apiKey: key });
    expect(accepted.status).toBe(403);
    expect((await t.request('GET', `/api/user/organizations/${orgB}`, { as: invitee })).status).toBe(404);
    // The invitation is still open for the user's own session.
    expect((await t.request('POST', `/api/user/invitations/${token}/accept`, { as: invitee })).status).toBe(200);
  });

  it("a pinned key cannot list or revoke the owner's keys for other organizations or the unpinned ones", async () => {
    const { key: pinnedA, id: pinnedAId } = await createApiKey(t, owner, { name: 'revoker A', organizationId: orgA });
    const { id: siblingId } = await createApiKey(t, owner, { name: 'sibling A', organizationId: orgA });
    const { key: bKey, id: bId } = await createApiKey(t, owner, { name: 'integration B', organizationId: orgB });
    const { key: fullKey, id: fullId } = await createApiKey(t, owner, { name: 'full integration' });
    const list = await t.request('GET', '/api/user/api-keys?limit=100', { apiKey: pinnedA });
    const ids = list.body.data.items.map((k: { id: string }) => k.id);
    expect(ids).toEqual(expect.arrayContaining([pinnedAId, siblingId]));
    expect(ids).not.toContain(bId);
    expect(ids).not.toContain(fullId);
    expect(list.body.data.items.every((k: { organizationId: string }) => k.organizationId === orgA)).toBe(true);
    expect((await t.request('DELETE', `/api/user/api-keys/${bId}`, { apiKey: pinnedA })).status).toBe(404);
    expect((await t.request('DELETE', `/api/user/api-keys/${fullId}`, { apiKey: pinnedA })).status).toBe(404);
    expect((await t.request('GET', '/api/user/me', { apiKey: bKey })).status).toBe(200);
    expect((await t.request('GET', '/api/user/me', { apiKey: fullKey })).status).toBe(200);
    // Within its own organization it may clean up, itself included.
    expect((await t.request('DELETE', `/api/user/api-keys/${siblingId}`, { apiKey: pinnedA })).status).toBe(200);
    expect((await t.request('DELETE', `/api/user/api-keys/${pinnedAId}`, { apiKey: pinnedA })).status).toBe(200);
    expect((await t.request('GET', '/api/user/me', { apiKey: pinnedA })).status).toBe(401);
  });

  it('a scoped key cannot revoke a stronger key of its owner', async () => {
    const { key: userWrite } = await createApiKey(t, owner, { name: 'uw revoker', scopes: ['user:write'] });
    const { key: fullKey, id: fullId } = await createApiKey(t, owner, { name: 'full victim' });
    const { id: weakId } = await createApiKey(t, owner, { name: 'weak', scopes: ['user:read'] });
    const res = await t.request('DELETE', `/api/user/api-keys/${fullId}`, { apiKey: userWrite });
    expect(res.status).toBe(403);
    expect((await t.request('GET', '/api/user/me', { apiKey: fullKey })).status).toBe(200);
    expect((await t.request('DELETE', `/api/user/api-keys/${weakId}`, { apiKey: userWrite })).status).toBe(200);
  });

  it('a session keeps full control: it may mint any key and revoke any of its keys', async () => {
    const { id } = await createApiKey(t, owner, { name: 'pinned B by session', organizationId: orgB });
    expect((await t.request('DELETE', `/api/user/api-keys/${id}`, { as: owner })).status).toBe(200);
    const member = await t.signUp('member@escalate.test');
    await addMember(t, owner, orgA, member, 'member');
    expect((await t.request('POST', '/api/user/api-keys', { as: member, body: { name: 'm', organizationId: orgA } })).status).toBe(201);
  });
});
