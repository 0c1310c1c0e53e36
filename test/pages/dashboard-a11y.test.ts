/**
 * Every dashboard page in Chromium, scanned by axe-core (no serious or critical violation), with
 * screenshots of the main pages at 1280×900 for docs/dashboard.md. The organization is seeded
 * through the API: an OIDC connection to the real test IdP (tested), a linked SSO identity, a
 * pending domain, members, an invitation, an API key, a setup link, and the audit trail of it all.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, type GuardedPage } from '../helpers/browser.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';
import { screenshotPath, seriousViolations, startDashboardWorld, type DashboardWorld } from './dashboard-world.js';

const run = chromiumAvailable();
let world: DashboardWorld;
let idp: RealIdp;
let g: GuardedPage | null = null;
let owner: TestUser;
let member: TestUser;
let lonely: TestUser;
let orgId: string;

const t = () => world.served.t;
const SECTIONS = ['sso', 'domains', 'security', 'members', 'identities', 'api-keys', 'audit', 'setup-links'] as const;
const SHOTS: Record<string, string> = { sso: 'sso', security: 'security', members: 'members', audit: 'audit', identities: 'identities', 'api-keys': 'api-keys', 'setup-links': 'setup-links' };

describe.skipIf(!run)('dashboard accessibility and screenshots (Chromium, axe-core)', () => {
  beforeAll(async () => {
    world = await startDashboardWorld();
    idp = await startRealIdp({ redirectUris: [`${world.served.baseUrl}/api/auth/sso/callback`], users: [{ sub: 'erin-sub', email: 'erin@acme-a11y.test', email_verified: true, name: 'Erin Example' }] });
    owner = await t().signUp('owner@acme-a11y.test', 'correct horse battery', 'Olive Owner');
    member = await t().signUp('member@acme-a11y.test', 'correct horse battery', 'Max Member');
    lonely = await t().signUp('new@elsewhere-a11y.test');
    orgId = await createOrg(t(), owner, 'Acme', 'acme');
    await configureOidc(t(), owner, orgId, idp);
    expect((await t().request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner })).status).toBe(200);
    const login = await ssoLogin(t(), '/api/auth/sso/acme/login', (u) => idp.login(u, 'erin-sub'));
    expect(login.callback?.status).toBe(302);
    await addMember(t(), owner, orgId, member, 'member');
    const admin = await t().signUp('admin@acme-a11y.test', 'correct horse battery', 'Ada Admin');
    await addMember(t(), owner, orgId, admin, 'admin');
    await t().request('POST', `/api/user/organizations/${orgId}/invitations`, { as: owner, body: { email: 'pending@acme-a11y.test', role: 'admin' } });
    await t().request('POST', `/api/user/organizations/${orgId}/domains`, { as: owner, body: { domain: 'acme-a11y.example' } });
    await createApiKey(t(), owner, { name: 'break-glass', organizationId: orgId });
    await t().request('POST', `/api/user/organizations/${orgId}/setup-links`, { as: owner, body: { scope: ['sso', 'domains'], expiresInHours: 48 } });
  });
  afterAll(async () => {
    await idp?.close();
    await world?.close();
  });
  afterEach(async () => {
    await closeAndCheck(g);
    g = null;
  });

  it("every section of the owner's dashboard has no serious or critical axe violation", async () => {
    g = await world.pageAs(owner);
    for (const section of SECTIONS) {
      const res = await g.page.goto(world.url(`/dashboard/${orgId}/${section}`));
      expect(res?.status(), section).toBe(200);
      expect(await seriousViolations(g.page), section).toEqual([]);
      const shot = SHOTS[section];
      if (shot) await g.page.screenshot({ path: screenshotPath(shot), fullPage: false });
    }
    // The audit log lists what the seeding did, with its actors; a filter narrows it.
    await g.page.goto(world.url(`/dashboard/${orgId}/audit?action=sso.`));
    const actions = await g.page.locator('#audit-table tbody th code').allTextContents();
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((a) => a.startsWith('sso.'))).toBe(true);
    expect(await seriousViolations(g.page)).toEqual([]);
  });

  it('the account page, the welcome page, a member view and a refusal page have no serious or critical axe violation', async () => {
    g = await world.pageAs(owner);
    await g.page.goto(world.url('/dashboard/account'));
    expect(await seriousViolations(g.page)).toEqual([]);
    await g.page.getByRole('button', { name: 'Set up two-step verification' }).click();
    await expect.poll(() => g!.page.getByRole('img', { name: /QR code/ }).count()).toBe(1);
    expect(await seriousViolations(g.page)).toEqual([]);
    await g.page.screenshot({ path: screenshotPath('account'), fullPage: true });
    await closeAndCheck(g);

    g = await world.pageAs(lonely);
    await g.page.goto(world.url('/dashboard'));
    expect(await g.page.getByRole('heading', { name: 'Create an organization' }).count()).toBe(1);
    expect(await seriousViolations(g.page)).toEqual([]);
    await closeAndCheck(g);

    g = await world.pageAs(member);
    await g.page.goto(world.url(`/dashboard/${orgId}/members`));
    expect(await seriousViolations(g.page)).toEqual([]);
    await g.page.screenshot({ path: screenshotPath('member-view'), fullPage: false });
    const refused = await g.page.goto(world.url(`/dashboard/${orgId}/audit`));
    expect(refused?.status()).toBe(403);
    expect(await seriousViolations(g.page)).toEqual([]);
  });
});
