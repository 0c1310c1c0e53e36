import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let owner: TestUser;
beforeAll(async () => {
  t = await createTestGatehouse();
  owner = await t.signUp('audit@example.com');
});
afterAll(async () => {
  await t.destroy();
});

describe('audit log', () => {
  it('records every organization write with actor, action, target, IP and time', async () => {
    const org = await createOrg(t, owner, 'Audited');
    const bob = await t.signUp('bob@audited.test');
    await addMember(t, owner, org, bob, 'member');
    await t.request('PATCH', `/api/user/organizations/${org}/members/${bob.id}`, { as: owner, body: { role: 'admin' }, ip: '127.0.0.42' });
    await t.request('PATCH', `/api/user/organizations/${org}`, { as: owner, body: { name: 'Audited 2' } });
    const { key } = await createApiKey(t, owner, { name: 'audit key', organizationId: org });
    await t.request('DELETE', `/api/user/organizations/${org}/members/${bob.id}`, { apiKey: key });

    const res = await t.request('GET', `/api/user/organizations/${org}/audit-log?limit=100`, { as: owner });
    expect(res.status).toBe(200);
    const actions = res.body.data.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual([
      'member.removed', 'api_key.created', 'organization.updated', 'member.role_changed', 'invitation.accepted', 'invitation.created', 'organization.created',
    ]);
    const roleChange = res.body.data.items.find((e: { action: string }) => e.action === 'member.role_changed');
    expect(roleChange).toMatchObject({ actor: { type: 'user', userId: owner.id }, target: { type: 'user', id: bob.id }, ip: '127.0.0.42', metadata: { from: 'member', to: 'admin' } });
    expect(Date.parse(roleChange.createdAt)).not.toBeNaN();
    const removal = res.body.data.items.find((e: { action: string }) => e.action === 'member.removed');
    expect(removal.actor).toMatchObject({ type: 'api_key', userId: owner.id });
    expect(removal.actor.apiKeyId).toBeTruthy();
  });

  it('never stores a secret: not the API key, not an invitation token, not a password', async () => {
    const org = await createOrg(t, owner, 'Secretless');
    const { key } = await createApiKey(t, owner, { name: 'k', organizationId: org });
    await t.request('POST', `/api/user/organizations/${org}/invitations`, { as: owner, body: { email: 'x@secretless.test', role: 'member' } });
    const token = /invitations\/([A-Za-z0-9_-]+)\/accept/.exec(t.mails.at(-1)!.text)![1]!;
    const all = JSON.stringify(await t.deps.db.selectFrom('audit_events').selectAll().execute());
    expect(all).not.toContain(key);
    expect(all).not.toContain(token);
    expect(all).not.toContain(owner.password);
  });

  it('a plain member cannot read the audit log', async () => {
    const org = await createOrg(t, owner, 'Private Log');
    const m = await t.signUp('m@private.test');
    await addMember(t, owner, org, m, 'member');
    expect((await t.request('GET', `/api/user/organizations/${org}/audit-log`, { as: m })).status).toBe(403);
  });

  it('keeps the trail of a deleted organization', async () => {
    const org = await createOrg(t, owner, 'Doomed');
    await t.request('DELETE', `/api/user/organizations/${org}`, { as: owner });
    const rows = await t.deps.db.selectFrom('audit_events').select('action').where('organization_id', '=', org).execute();
    expect(rows.map((r) => r.action)).toContain('organization.deleted');
  });
});
