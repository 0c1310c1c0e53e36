import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/*
 * SPEC §12: invitations are rate-limited per organization and per inviter. An invitation is a
 * mail from Gatehouse carrying the organization's free-text name ("Your bank — verify now"), so
 * without a limit anyone can sign up, name an organization and send branded phishing in bulk.
 */
let t: TestGatehouse;
beforeAll(async () => {
  t = await createTestGatehouse({
    rateLimits: { 'invitation:organization': { points: 4, duration: 3600 }, 'invitation:inviter': { points: 3, duration: 3600 } },
  });
});
afterAll(async () => {
  await t.destroy();
});

const invite = (as: TestUser, orgId: string, email: string) =>
  t.request('POST', `/api/user/organizations/${orgId}/invitations`, { as, body: { email, role: 'member' } });
const invitationsOf = async (orgId: string) =>
  (await t.deps.db.selectFrom('invitations').select('email').where('organization_id', '=', orgId).execute()).map((r) => r.email);

describe('invitation rate limits', () => {
  it('an inviter cannot send phishing invitations in bulk: 429 with Retry-After past the per-inviter limit, across organizations, and no mail goes out', async () => {
    const phisher = await t.signUp('phisher@example.com');
    const orgA = await createOrg(t, phisher, 'Your Bank — verify your account now');
    const orgB = await createOrg(t, phisher, 'Your Bank — second try');
    expect((await invite(phisher, orgA, 'v1@victims.test')).status).toBe(201);
    expect((await invite(phisher, orgA, 'v2@victims.test')).status).toBe(201);
    expect((await invite(phisher, orgB, 'v3@victims.test')).status).toBe(201);
    const mailsBefore = t.mails.length;
    const limited = await invite(phisher, orgB, 'v4@victims.test');
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await invite(phisher, orgA, 'v5@victims.test')).status).toBe(429);
    expect(t.mails.length).toBe(mailsBefore);
    expect(t.mails.some((m) => m.to === 'v4@victims.test' || m.to === 'v5@victims.test')).toBe(false);
    expect(await invitationsOf(orgB)).toEqual(['v3@victims.test']);
  });

  it("an organization's invitations are capped across all its admins, and other organizations keep their own budget", async () => {
    const owner = await t.signUp('owner@capped.test');
    const org = await createOrg(t, owner, 'Capped');
    const admin1 = await t.signUp('admin1@capped.test');
    const admin2 = await t.signUp('admin2@capped.test');
    await addMember(t, owner, org, admin1, 'admin'); // 1
    await addMember(t, owner, org, admin2, 'admin'); // 2
    expect((await invite(admin1, org, 'a@capped.test')).status).toBe(201); // 3
    expect((await invite(admin1, org, 'b@capped.test')).status).toBe(201); // 4: the organization's budget is spent
    const limited = await invite(admin2, org, 'c@capped.test');
    expect(limited.status).toBe(429);
    expect(await invitationsOf(org)).not.toContain('c@capped.test');
    // Elsewhere, the same person still has a budget of their own.
    const other = await createOrg(t, admin2, 'Other');
    expect((await invite(admin2, other, 'c@capped.test')).status).toBe(201);
  });

  it('a caller who may not invite does not spend the organization budget', async () => {
    const owner = await t.signUp('owner@budget.test');
    const org = await createOrg(t, owner, 'Budget');
    const outsider = await t.signUp('outsider@budget.test');
    for (let i = 0; i < 6; i++) expect((await invite(outsider, org, `x${i}@budget.test`)).status).toBe(404);
    expect((await invite(owner, org, 'real@budget.test')).status).toBe(201);
  });
});
