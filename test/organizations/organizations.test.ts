import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let owner: TestUser;
beforeAll(async () => {
  t = await createTestGatehouse();
  owner = await t.signUp('owner@acme.test');
});
afterAll(async () => {
  await t.destroy();
});

describe('organizations', () => {
  it('creates an organization with a generated slug; the creator is owner', async () => {
    const res = await t.request('POST', '/api/user/organizations', { as: owner, body: { name: 'Acme Corp Ünïcode' } });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ name: 'Acme Corp Ünïcode', slug: 'acme-corp-unicode', role: 'owner' });
    expect(res.body.data.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    const mine = await t.request('GET', '/api/user/organizations', { as: owner });
    expect(mine.body.data.items).toContainEqual({ id: res.body.data.id, name: 'Acme Corp Ünïcode', slug: 'acme-corp-unicode', role: 'owner' });
    const session = await t.request('GET', '/api/auth/session', { as: owner });
    expect(session.body.data.memberships).toContainEqual({ organizationId: res.body.data.id, name: 'Acme Corp Ünïcode', slug: 'acme-corp-unicode', role: 'owner' });
  });

  it('refuses a duplicate given slug with 409 and generates a distinct one when the name repeats', async () => {
    await createOrg(t, owner, 'Dup', 'dup-slug');
    const res = await t.request('POST', '/api/user/organizations', { as: owner, body: { name: 'Other', slug: 'dup-slug' } });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'CONFLICT', details: { field: 'slug' } });
    const a = await t.request('POST', '/api/user/organizations', { as: owner, body: { name: 'Same Name' } });
    const b = await t.request('POST', '/api/user/organizations', { as: owner, body: { name: 'Same Name' } });
    expect(b.status).toBe(201);
    expect(b.body.data.slug).not.toBe(a.body.data.slug);
    expect(b.body.data.slug).toMatch(/^same-name-[0-9a-f]{6}$/);
  });

  it('validates slugs and names', async () => {
    for (const body of [{ name: '' }, { name: 'x', slug: 'Bad Slug' }, { name: 'x', slug: '-x' }, { name: 'x', extra: 1 }, { name: 'x'.repeat(101) }]) {
      const res = await t.request('POST', '/api/user/organizations', { as: owner, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('renames, changes the slug, and deletes (owner)', async () => {
    const id = await createOrg(t, owner, 'Rename Me');
    const res = await t.request('PATCH', `/api/user/organizations/${id}`, { as: owner, body: { name: 'Renamed', slug: 'renamed' } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ name: 'Renamed', slug: 'renamed' });
    expect((await t.request('PATCH', `/api/user/organizations/${id}`, { as: owner, body: {} })).status).toBe(400);
    const del = await t.request('DELETE', `/api/user/organizations/${id}`, { as: owner });
    expect(del.status).toBe(200);
    expect((await t.request('GET', `/api/user/organizations/${id}`, { as: owner })).status).toBe(404);
  });

  it('answers 400 for a malformed organization id', async () => {
    const res = await t.request('GET', '/api/user/organizations/123', { as: owner });
    expect(res.status).toBe(400);
    expect(res.body.details.issues[0].path).toBe('organizationId');
  });
});

describe('members and the last owner', () => {
  it('lists members; an owner cannot leave, be removed or be demoted while the last owner', async () => {
    const id = await createOrg(t, owner, 'Owners');
    const bob = await t.signUp('bob@acme.test');
    await addMember(t, owner, id, bob, 'member');
    const list = await t.request('GET', `/api/user/organizations/${id}/members`, { as: owner });
    expect(list.status).toBe(200);
    expect(list.body.data.items.map((m: { email: string; role: string }) => [m.email, m.role]).sort()).toEqual([
      ['bob@acme.test', 'member'],
      ['owner@acme.test', 'owner'],
    ]);
    const demote = await t.request('PATCH', `/api/user/organizations/${id}/members/${owner.id}`, { as: owner, body: { role: 'admin' } });
    expect(demote.status).toBe(409);
    expect(demote.body.code).toBe('LAST_OWNER');
    const leave = await t.request('DELETE', `/api/user/organizations/${id}/members/${owner.id}`, { as: owner });
    expect(leave.status).toBe(409);
    expect(leave.body.code).toBe('LAST_OWNER');

    // Once bob is owner too, the first owner may step down.
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${bob.id}`, { as: owner, body: { role: 'owner' } })).status).toBe(200);
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${owner.id}`, { as: owner, body: { role: 'member' } })).status).toBe(200);
    // And now bob is the last owner: nobody can remove him.
    const removeBob = await t.request('DELETE', `/api/user/organizations/${id}/members/${bob.id}`, { as: bob });
    expect(removeBob.body.code).toBe('LAST_OWNER');
  });

  it('an admin manages members but cannot grant or take away ownership', async () => {
    const id = await createOrg(t, owner, 'Admins');
    const admin = await t.signUp('admin1@acme.test');
    const carol = await t.signUp('carol@acme.test');
    await addMember(t, owner, id, admin, 'admin');
    await addMember(t, owner, id, carol, 'member');
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${carol.id}`, { as: admin, body: { role: 'admin' } })).status).toBe(200);
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${carol.id}`, { as: admin, body: { role: 'owner' } })).status).toBe(403);
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${owner.id}`, { as: admin, body: { role: 'member' } })).status).toBe(403);
    expect((await t.request('DELETE', `/api/user/organizations/${id}/members/${owner.id}`, { as: admin })).status).toBe(403);
    expect((await t.request('DELETE', `/api/user/organizations/${id}/members/${carol.id}`, { as: admin })).status).toBe(200);
    expect((await t.request('PATCH', `/api/user/organizations/${id}/members/${carol.id}`, { as: admin, body: { role: 'member' } })).status).toBe(404);
  });

  it('a member may leave', async () => {
    const id = await createOrg(t, owner, 'Leavers');
    const dan = await t.signUp('dan@acme.test');
    await addMember(t, owner, id, dan, 'member');
    expect((await t.request('DELETE', `/api/user/organizations/${id}/members/${dan.id}`, { as: dan })).status).toBe(200);
    expect((await t.request('GET', `/api/user/organizations/${id}`, { as: dan })).status).toBe(404);
  });
});

describe('invitations', () => {
  it('invites by email; the invitee accepts once with the emailed token', async () => {
    const id = await createOrg(t, owner, 'Inviting');
    const res = await t.request('POST', `/api/user/organizations/${id}/invitations`, { as: owner, body: { email: 'New.Person@acme.test', role: 'admin' } });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({ email: 'new.person@acme.test', role: 'admin' });
    expect(JSON.stringify(res.body)).not.toMatch(/token/i);
    const mail = t.mails.findLast((m) => m.to === 'new.person@acme.test')!;
    const token = /invitations\/([A-Za-z0-9_-]+)\/accept/.exec(mail.text)![1]!;
    const list = await t.request('GET', `/api/user/organizations/${id}/invitations`, { as: owner });
    expect(list.body.data.items).toHaveLength(1);

    const dup = await t.request('POST', `/api/user/organizations/${id}/invitations`, { as: owner, body: { email: 'new.person@acme.test', role: 'member' } });
    expect(dup.status).toBe(409);

    const stranger = await t.signUp('stranger@acme.test');
    const wrong = await t.request('POST', `/api/user/invitations/${token}/accept`, { as: stranger });
    expect(wrong.status).toBe(403);

    const invitee = await t.signUp('new.person@acme.test');
    const acc = await t.request('POST', `/api/user/invitations/${token}/accept`, { as: invitee });
    expect(acc.status).toBe(200);
    expect(acc.body.data).toEqual({ organizationId: id, role: 'admin' });
    const me = await t.request('GET', '/api/user/me', { as: invitee });
    expect(me.body.data.emailVerified).toBe(true);

    const again = await t.request('POST', `/api/user/invitations/${token}/accept`, { as: invitee });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('INVALID_TOKEN');
    const rows = await t.deps.db.selectFrom('invitations').select('token_hash').execute();
    for (const r of rows) expect(r.token_hash).not.toBe(token);
  });

  it('an invitation expires after 7 days and can be revoked', async () => {
    const id = await createOrg(t, owner, 'Expiring');
    const res = await t.request('POST', `/api/user/organizations/${id}/invitations`, { as: owner, body: { email: 'late@acme.test', role: 'member' } });
    const token = /invitations\/([A-Za-z0-9_-]+)\/accept/.exec(t.mails.findLast((m) => m.to === 'late@acme.test')!.text)![1]!;
    const late = await t.signUp('late@acme.test');
    t.clock.advance(7 * 24 * 3600_000 + 1000);
    const fresh = await t.request('POST', '/api/auth/sign-in/email', { body: { email: late.email, password: late.password } });
    expect((await t.request('POST', `/api/user/invitations/${token}/accept`, { as: { cookie: fresh.cookie! } })).body.code).toBe('INVALID_TOKEN');
    t.clock.advance(-(7 * 24 * 3600_000 + 1000));

    const rev = await t.request('DELETE', `/api/user/organizations/${id}/invitations/${res.body.data.id}`, { as: owner });
    expect(rev.status).toBe(200);
    expect((await t.request('POST', `/api/user/invitations/${token}/accept`, { as: late })).body.code).toBe('INVALID_TOKEN');
    expect((await t.request('DELETE', `/api/user/organizations/${id}/invitations/${res.body.data.id}`, { as: owner })).status).toBe(404);
  });

  it('an admin cannot invite an owner', async () => {
    const id = await createOrg(t, owner, 'Invite Owner');
    const admin = await t.signUp('admin2@acme.test');
    await addMember(t, owner, id, admin, 'admin');
    const res = await t.request('POST', `/api/user/organizations/${id}/invitations`, { as: admin, body: { email: 'boss@acme.test', role: 'owner' } });
    expect(res.status).toBe(403);
  });
});

describe('superadmin', () => {
  it('lists all organizations and acts on any organization; others get 403 on the platform list', async () => {
    const id = await createOrg(t, owner, 'Visible To Admin');
    const { user } = await t.services.accounts.createSuperadmin({ email: 'root@platform.test', password: 'root password' });
    const login = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'root@platform.test', password: 'root password' } });
    const root = { cookie: login.cookie!, id: user.id, email: user.email, password: '' };
    const all = await t.request('GET', '/api/admin/organizations?limit=100', { as: root });
    expect(all.status).toBe(200);
    expect(all.body.data.items.map((o: { id: string }) => o.id)).toContain(id);
    expect((await t.request('GET', `/api/user/organizations/${id}/members`, { as: root })).status).toBe(200);
    expect((await t.request('GET', '/api/admin/organizations', { as: owner })).status).toBe(403);
  });
});

describe('pagination', () => {
  it('pages with limit and cursor, and rejects a bad limit', async () => {
    const id = await createOrg(t, owner, 'Paged');
    for (let i = 0; i < 5; i++) {
      await t.request('POST', `/api/user/organizations/${id}/invitations`, { as: owner, body: { email: `p${i}@acme.test`, role: 'member' } });
    }
    const first = await t.request('GET', `/api/user/organizations/${id}/invitations?limit=2`, { as: owner });
    expect(first.body.data.items).toHaveLength(2);
    expect(first.body.data.nextCursor).toBeTruthy();
    const seen = new Set(first.body.data.items.map((i: { id: string }) => i.id));
    let cursor = first.body.data.nextCursor;
    while (cursor) {
      const page = await t.request('GET', `/api/user/organizations/${id}/invitations?limit=2&cursor=${cursor}`, { as: owner });
      for (const i of page.body.data.items) seen.add(i.id);
      cursor = page.body.data.nextCursor;
    }
    expect(seen.size).toBe(5);
    expect((await t.request('GET', `/api/user/organizations/${id}/invitations?limit=0`, { as: owner })).status).toBe(400);
    expect((await t.request('GET', `/api/user/organizations/${id}/invitations?limit=101`, { as: owner })).status).toBe(400);
    expect((await t.request('GET', `/api/user/organizations/${id}/invitations?cursor=zzz`, { as: owner })).status).toBe(400);
    expect((await t.request('GET', `/api/user/organizations/${id}/invitations?bogus=1`, { as: owner })).status).toBe(400);
  });
});

describe('API key pinned to an organization', () => {
  it('works on its organization and is refused (403) on any other', async () => {
    const a = await createOrg(t, owner, 'Pinned A');
    const b = await createOrg(t, owner, 'Pinned B');
    const { key } = await createApiKey(t, owner, { name: 'pinned', organizationId: a });
    expect((await t.request('GET', `/api/user/organizations/${a}`, { apiKey: key })).status).toBe(200);
    const other = await t.request('GET', `/api/user/organizations/${b}`, { apiKey: key });
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('FORBIDDEN');
  });
});
