/**
 * /dashboard over HTTP in-process (no browser): who gets which page, the strict CSP, no secret in
 * the HTML, and service refusals rendered as pages (never a 500 or a JSON envelope).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { seedConfirmedFactor } from '../helpers/policy.js';

let t: TestGatehouse;
let owner: TestUser;
let admin: TestUser;
let member: TestUser;
let outsider: TestUser;
let orgId: string;

const page = (path: string, as: TestUser | null) => t.request('GET', path, { as, headers: { accept: 'text/html' } });

describe('dashboard pages over HTTP', () => {
  beforeAll(async () => {
    t = await createTestGatehouse();
    owner = await t.signUp('owner@http-dash.test');
    admin = await t.signUp('admin@http-dash.test');
    member = await t.signUp('member@http-dash.test');
    outsider = await t.signUp('outsider@http-dash.test');
    orgId = await createOrg(t, owner, 'Http', 'http-dash');
    await addMember(t, owner, orgId, admin, 'admin');
    await addMember(t, owner, orgId, member, 'member');
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('signed out: 302 to /sign-in with the page as returnTo', async () => {
    const res = await page(`/dashboard/${orgId}/domains?cursor=x`, null);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`/sign-in?returnTo=${encodeURIComponent(`/dashboard/${orgId}/domains?cursor=x`)}`);
  });

  it('a session whose second factor is pending is sent to /sign-in too', async () => {
    const u = await t.signUp('mfa@http-dash.test');
    await seedConfirmedFactor(t, u.id);
    const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: u.email, password: u.password } });
    expect(signIn.body.data.session.mfa).toBe('pending');
    const res = await page('/dashboard', { cookie: signIn.cookie! } as TestUser);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toMatch(/^\/sign-in\?returnTo=/);
  });

  it('/dashboard opens the first organization, at the first section the role may use', async () => {
    expect((await page('/dashboard', owner)).headers.get('location')).toBe(`/dashboard/${orgId}`);
    expect((await page(`/dashboard/${orgId}`, owner)).headers.get('location')).toBe(`/dashboard/${orgId}/sso`);
    expect((await page(`/dashboard/${orgId}`, admin)).headers.get('location')).toBe(`/dashboard/${orgId}/domains`);
    expect((await page(`/dashboard/${orgId}`, member)).headers.get('location')).toBe(`/dashboard/${orgId}/members`);
  });

  it('pages carry the strict CSP and no-store, and no inline script or style', async () => {
    const res = await page(`/dashboard/${orgId}/sso`, owner);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(res.text).not.toMatch(/\sstyle=/);
    expect(res.text).not.toMatch(/\son[a-z]+=/);
  });

  it('an organization the user is not a member of is a 404 page that does not say it exists', async () => {
    const res = await page(`/dashboard/${orgId}/members`, outsider);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).not.toContain('Http');
    const bogus = await page('/dashboard/not-an-id/members', outsider);
    expect(bogus.status).toBe(404);
  });

  it('role-aware: an admin has no SSO or security page; a member has no admin form at all', async () => {
    expect((await page(`/dashboard/${orgId}/sso`, admin)).status).toBe(403);
    expect((await page(`/dashboard/${orgId}/security`, admin)).status).toBe(403);
    const domains = await page(`/dashboard/${orgId}/domains`, admin);
    expect(domains.status).toBe(200);
    expect(domains.text).toContain(`data-api="POST /api/user/organizations/${orgId}/domains"`);
    const adminMembers = await page(`/dashboard/${orgId}/members`, admin);
    expect(adminMembers.text).toContain('aria-label="Remove member@http-dash.test"');
    expect(adminMembers.text).not.toContain('aria-label="Remove owner@http-dash.test"');
    expect(adminMembers.text).not.toContain('<option value="owner"');
    expect((await page(`/dashboard/${orgId}/members`, owner)).text).toContain('<option value="owner"');
    const links = await page(`/dashboard/${orgId}/setup-links`, admin);
    expect(links.text).not.toContain('id="scope-sso"');
    expect(links.text).toContain('id="scope-domains"');
    for (const section of ['sso', 'domains', 'security', 'identities', 'audit', 'setup-links']) {
      expect((await page(`/dashboard/${orgId}/${section}`, member)).status, section).toBe(403);
    }
    const members = await page(`/dashboard/${orgId}/members`, member);
    expect(members.status).toBe(200);
    expect(members.text).not.toMatch(/data-api=|data-submit-to=/);
    expect(members.text).toContain('read-only view');
  });

  it('the client secret input is always rendered empty (a saved secret is checked absent in the browser test)', async () => {
    const res = await page(`/dashboard/${orgId}/sso`, owner);
    expect(res.text).toContain('name="clientSecret" type="password" value=""');
  });

  it('audit log: filters go to the audit service; a bad filter is shown next to its field', async () => {
    const mine = await page(`/dashboard/${orgId}/audit?action=invitation.&actor=${encodeURIComponent(owner.email)}`, admin);
    expect(mine.status).toBe(200);
    expect(mine.text).toContain('<code>invitation.created</code>');
    expect(mine.text).not.toContain('<code>organization.created</code>');
    const none = await page(`/dashboard/${orgId}/audit?actorType=setup_link`, admin);
    expect(none.text).toContain('No event matches the filters');
    const bad = await page(`/dashboard/${orgId}/audit?action=DROP%20TABLE&from=yesterday`, admin);
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/id="audit-action"[^>]*aria-invalid="true"/);
    expect(bad.text).toMatch(/id="audit-from"[^>]*aria-invalid="true"/);
    expect(bad.text).toContain('Some filters are not valid');
  });

  it("a refusal by the organization's policy is a page that says what to do, not a 500", async () => {
    const strictOwner = await t.signUp('strict@http-dash.test');
    const strictId = await createOrg(t, strictOwner, 'Strict', 'strict-http-dash');
    const put = await t.request('PUT', `/api/user/organizations/${strictId}/settings/security`, { as: strictOwner, body: { authRequired: 'mfa' } });
    expect(put.status).toBe(200);
    const res = await page(`/dashboard/${strictId}/members`, strictOwner);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).toMatch(/two-step verification/);
    expect(res.text).toContain('href="/dashboard/account"');
    // The account page stays reachable, to set the factor up.
    expect((await page('/dashboard/account', strictOwner)).status).toBe(200);
  });

  it('an unknown section is a 404 page', async () => {
    expect((await page(`/dashboard/${orgId}/nope`, owner)).status).toBe(404);
  });
});
