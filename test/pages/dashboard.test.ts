/**
 * /dashboard in real Chromium against a served Gatehouse, with the certified oidc-provider as the
 * organization's IdP: an owner goes from no organization to a working OIDC login through the
 * dashboard alone; "SSO only" is offered only after a passing test and lowered again with an API
 * key; a member sees a read-only view and a forged admin write from the member's browser is
 * refused; one flow is done with the keyboard alone; TOTP enrolment with the QR code.
 */
import { generate } from 'otplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck } from '../helpers/browser.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { expectStatus, startDashboardWorld, type DashboardPage, type DashboardWorld } from './dashboard-world.js';

const run = chromiumAvailable();
let world: DashboardWorld;
let idp: RealIdp;
let g: DashboardPage | null = null;
let owner: TestUser;
let orgId: string;

const t = () => world.served.t;
const focusedId = () => g!.page.evaluate(() => document.activeElement?.id ?? null);

describe.skipIf(!run)('dashboard (Chromium, real OIDC IdP)', () => {
  beforeAll(async () => {
    world = await startDashboardWorld();
    idp = await startRealIdp({
      redirectUris: [`${world.served.baseUrl}/api/auth/sso/callback`],
      users: [{ sub: 'carol-sub', email: 'carol@acme-dash.test', email_verified: true, name: 'Carol Acme' }],
    });
    owner = await t().signUp('owner@acme-dash.test', 'correct horse battery', 'Olive Owner');
  });
  afterAll(async () => {
    await idp?.close();
    await world?.close();
  });
  afterEach(async () => {
    await closeAndCheck(g);
    g = null;
  });

  it('signed out: /dashboard sends the browser to /sign-in and back', async () => {
    g = await world.pageAs(null);
    await g.page.goto(world.url('/dashboard/account'));
    expect(new URL(g.page.url()).pathname).toBe('/sign-in');
    expect(new URL(g.page.url()).searchParams.get('returnTo')).toBe('/dashboard/account');
  });

  it('an owner goes from no organization to a working OIDC SSO login, entirely through the dashboard', async () => {
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url('/dashboard'));
    // No organization yet: create one.
    await page.getByLabel('Name', { exact: true }).fill('Acme');
    await page.getByLabel('Slug').fill('acme');
    await Promise.all([page.waitForURL(/\/dashboard\/[0-9A-Z]{26}\/sso$/), page.getByRole('button', { name: 'Create organization' }).click()]);
    orgId = new URL(page.url()).pathname.split('/')[2]!;

    // The values to paste into the IdP, before any connection exists.
    const redirectUri = await page.getByRole('textbox', { name: 'Redirect URI', exact: true }).inputValue();
    expect(redirectUri).toBe(`${world.served.baseUrl}/api/auth/sso/callback/${orgId}`);
    expect(await page.getByRole('textbox', { name: 'Login link for your team' }).inputValue()).toBe(`${world.served.baseUrl}/api/auth/sso/acme/login`);
    await page.getByRole('button', { name: 'Copy Redirect URI' }).click();
    await expectStatus(page, /Copied Redirect URI|selected/);
    await idp.addRedirectUri(redirectUri);

    // Fill the OIDC form and test it before saving.
    const form = page.locator('#oidc-form');
    await form.getByLabel('Identity provider').selectOption('oidc');
    await form.getByLabel('Issuer URL').fill(idp.issuer);
    await form.getByLabel('Client ID').fill(idp.clientId);
    await form.getByLabel('Client secret').fill(idp.clientSecret);
    const out = form.locator('[data-output]');
    // A wrong issuer: the failed check says why.
    await form.getByLabel('Issuer URL').fill(`${idp.issuer}/nope`);
    await form.getByRole('button', { name: 'Test these settings' }).click();
    await expect.poll(() => out.textContent()).toContain('Test failed');
    expect(await out.locator('li.fail').count()).toBeGreaterThan(0);
    expect(await page.evaluate(() => document.activeElement?.hasAttribute('data-output'))).toBe(true);
    await form.getByLabel('Issuer URL').fill(idp.issuer);
    await form.getByRole('button', { name: 'Test these settings' }).click();
    await expect.poll(() => out.textContent()).toContain('Test passed');
    const checks = await out.locator('li').allTextContents();
    for (const name of ['discovery', 'issuer', 'endpoints', 'jwks', 'signing_key']) expect(checks.some((c) => c.startsWith('Passed: ') && c.includes(name))).toBe(true);

    // Nothing was saved by the test.
    expect((await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).status).toBe(404);

    // A wrong value shows the error next to its field.
    await form.getByLabel('Issuer URL').fill('not a url');
    await form.getByRole('button', { name: 'Save' }).click();
    const issuer = form.getByLabel('Issuer URL');
    await expect.poll(() => issuer.getAttribute('aria-invalid')).toBe('true');
    expect(await focusedId()).toBe(await issuer.getAttribute('id'));
    const describedBy = (await issuer.getAttribute('aria-describedby'))!.split(' ');
    const errorText = await page.locator(`#${describedBy[describedBy.length - 1]}`).textContent();
    expect(errorText).toMatch(/URL/);

    await issuer.fill(idp.issuer);
    await form.getByRole('button', { name: 'Save' }).click();
    await expectStatus(page, 'SSO connection saved.');
    expect(await page.locator('#sso-enabled').textContent()).toBe('Enabled');
    expect(await page.locator('#last-test').textContent()).toBe('never tested');
    // The secret is never rendered back.
    expect(await page.content()).not.toContain(idp.clientSecret);
    expect(await page.locator('#oidc-form').getByLabel('Client secret').inputValue()).toBe('');

    await page.getByRole('button', { name: 'Test saved connection' }).click();
    await expect.poll(() => page.locator('#saved-test-output').textContent()).toContain('Test passed');
    await page.reload();
    expect(await page.locator('#last-test').textContent()).toMatch(/^passed at /);
    await closeAndCheck(g);

    // A real SSO sign-in in a second browser context.
    g = await world.pageAs(null);
    await g.context.setExtraHTTPHeaders({ 'x-test-login-sub': 'carol-sub' });
    await g.page.goto(world.url('/api/auth/sso/acme/login?returnTo=%2Fdashboard'));
    await g.page.waitForURL(new RegExp(`/dashboard/${orgId}/members$`), { timeout: 20_000 });
    expect(await g.page.locator('#my-role').textContent()).toBe('member');
    const cookie = (await g.context.cookies(world.served.baseUrl)).find((c) => c.name === 'gatehouse_session')!;
    const session = await t().request('GET', '/api/auth/session', { as: { cookie: cookie.value } });
    expect(session.body.data.user.email).toBe('carol@acme-dash.test');
    expect(session.body.data.session.authMethod).toBe('sso');
  });

  it('"SSO only" is offered only after a passing test; raised in the dashboard, lowered again with an API key', async () => {
    // The break-glass key, made before raising (as the page advises).
    const key = await createApiKey(t(), owner, { name: 'break-glass' });
    g = await world.pageAs(owner);
    const { page } = g;
    // Disable then enable: a save leaves the connection untested, so "SSO only" is not offered.
    await page.goto(world.url(`/dashboard/${orgId}/sso`));
    await page.getByRole('button', { name: 'Disable SSO' }).click();
    await expectStatus(page, 'SSO disabled.');
    await page.getByRole('button', { name: 'Enable SSO' }).click();
    await expectStatus(page, 'SSO enabled.');
    await page.goto(world.url(`/dashboard/${orgId}/security`));
    expect(await page.getByLabel('Single sign-on only').count()).toBe(0);
    expect(await page.locator('#sso-not-offered').textContent()).toContain('has not been tested yet');
    expect(await page.locator('#break-glass').textContent()).toBe(
      `curl -X PUT -H 'X-Api-Key: gk_…' -H 'content-type: application/json' -d '{"authRequired":"any"}' ${world.served.baseUrl}/api/user/organizations/${orgId}/settings/security`,
    );

    await page.goto(world.url(`/dashboard/${orgId}/sso`));
    await page.getByRole('button', { name: 'Test saved connection' }).click();
    await expect.poll(() => page.locator('#saved-test-output').textContent()).toContain('Test passed');
    await page.goto(world.url(`/dashboard/${orgId}/security`));
    await page.getByLabel('Single sign-on only').check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expectStatus(page, 'Security settings saved.');
    expect(g.dialogs.at(-1)).toContain('Keep a break-glass API key');
    const sec = await t().request('GET', `/api/user/organizations/${orgId}/settings/security`, { apiKey: key.key });
    expect(sec.body.data.authRequired).toBe('sso');

    // The owner's password session is now refused by the organization: a page that says so, not a 500.
    const res = await page.goto(world.url(`/dashboard/${orgId}/security`));
    expect(res?.status()).toBe(403);
    expect(await page.getByRole('alert').textContent()).toMatch(/SSO|single sign-on/i);
    expect(await page.getByRole('link', { name: 'Sign in with SSO' }).getAttribute('href')).toContain('/api/auth/sso/acme/login');

    // Lowered again with the API key, exactly as the page says.
    const lowered = await t().request('PUT', `/api/user/organizations/${orgId}/settings/security`, { apiKey: key.key, origin: null, body: { authRequired: 'any' } });
    expect(lowered.status).toBe(200);
    expect(lowered.body.data.authRequired).toBe('any');
    expect((await page.goto(world.url(`/dashboard/${orgId}/security`)))?.status()).toBe(200);
  });

  it('API key and setup link are shown once with a Copy button; a role change and an unlink go through the API', async () => {
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url(`/dashboard/${orgId}/api-keys`));
    await page.getByLabel('Name', { exact: true }).fill('ci');
    await page.getByLabel('organizations:read').check();
    await page.getByRole('button', { name: 'Create API key' }).click();
    const key = page.getByRole('textbox', { name: 'New API key' });
    await expect.poll(() => key.count()).toBe(1);
    const value = await key.inputValue();
    expect(value).toMatch(/^gk_/);
    expect(await focusedId()).toBe(await key.getAttribute('id'));
    const listed = await t().request('GET', '/api/user/organizations', { apiKey: value });
    expect(listed.body.data.items.map((o: { id: string }) => o.id)).toEqual([orgId]);
    await page.getByRole('link', { name: 'Done — show the list' }).click();
    await page.waitForLoadState();
    expect(await page.getByRole('table', { name: /Keys of/ }).textContent()).toContain('organizations:read');
    expect(await page.content()).not.toContain(value);

    await page.goto(world.url(`/dashboard/${orgId}/setup-links`));
    await page.getByLabel('Valid for (hours)').fill('2');
    await page.getByRole('button', { name: 'Create setup link' }).click();
    const link = page.getByRole('textbox', { name: 'Setup link URL' });
    await expect.poll(() => link.count()).toBe(1);
    const url = await link.inputValue();
    expect(url).toMatch(new RegExp(`^${world.served.baseUrl}/setup/`));
    await page.reload();
    expect(await page.content()).not.toContain(url);
    const rows = page.getByRole('table', { name: /Links of/ }).locator('tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('active');
    await rows.first().getByRole('button', { name: /^Revoke/ }).click();
    await expectStatus(page, 'Setup link revoked.');
    expect(await page.getByRole('table', { name: /Links of/ }).locator('tbody tr').first().textContent()).toContain('revoked');

    await page.goto(world.url(`/dashboard/${orgId}/members`));
    const roleForm = page.getByRole('form', { name: 'Change the role of carol@acme-dash.test' });
    await roleForm.getByLabel('Role of carol@acme-dash.test').selectOption('admin');
    await roleForm.getByRole('button', { name: 'Change role' }).click();
    await expectStatus(page, 'Role of carol@acme-dash.test changed.');
    const members = await t().request('GET', `/api/user/organizations/${orgId}/members`, { as: owner });
    expect(members.body.data.items.find((m: { email: string }) => m.email === 'carol@acme-dash.test').role).toBe('admin');

    await page.goto(world.url(`/dashboard/${orgId}/identities`));
    expect(await page.locator('.identity-card').textContent()).toContain('carol-sub');
    await page.getByRole('button', { name: /^Unlink carol@acme-dash.test/ }).click();
    await expectStatus(page, 'Identity unlinked.');
    expect(await page.locator('.identity-card').count()).toBe(0);
  });

  it("a member's view has no admin controls, and a forged admin write from the member's browser is refused", async () => {
    const betaOwner = await t().signUp('owner@beta-dash.test');
    const member = await t().signUp('member@beta-dash.test');
    const betaId = await createOrg(t(), betaOwner, 'Beta', 'beta');
    await addMember(t(), betaOwner, betaId, member, 'member');
    g = await world.pageAs(member);
    const { page } = g;
    await page.goto(world.url('/dashboard'));
    await page.waitForURL(world.url(`/dashboard/${betaId}/members`));
    expect(await page.locator('#readonly-note').textContent()).toContain('read-only view');
    expect(await page.locator('form[data-api], button[data-api], button[data-submit-to]').count()).toBe(0);
    const nav = await page.getByRole('navigation', { name: 'Dashboard' }).locator('a').allTextContents();
    expect(nav).toEqual(['Members', 'API keys', 'My account']);
    // An admin section is refused with a page, not rendered.
    const refused = await page.goto(world.url(`/dashboard/${betaId}/sso`));
    expect(refused?.status()).toBe(403);
    expect(await page.locator('form[data-api]').count()).toBe(0);
    // A forged write from the member's own browser (cookie and Origin are the real ones).
    const forged = await page.evaluate(async (path) => {
      const r = await fetch(path, { method: 'PUT', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'oidc', issuerUrl: 'https://evil.example', clientId: 'x', clientSecret: 'y' }) });
      return { status: r.status, code: ((await r.json()) as { code: string }).code };
    }, `/api/user/organizations/${betaId}/settings/sso`);
    expect(forged).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect((await t().request('GET', `/api/user/organizations/${betaId}/settings/sso`, { as: betaOwner })).status).toBe(404);
  });

  it('keyboard only: an owner invites someone with Tab and Enter', async () => {
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url(`/dashboard/${orgId}/members`));
    const email = page.getByLabel('Email address to invite');
    const emailId = await email.getAttribute('id');
    for (let i = 0; i < 80 && (await focusedId()) !== emailId; i++) await page.keyboard.press('Tab');
    expect(await focusedId()).toBe(emailId);
    await page.keyboard.type('dave@acme-dash.test');
    await page.keyboard.press('Tab'); // role (member)
    await page.keyboard.press('Tab'); // Send invitation
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Send invitation');
    await page.keyboard.press('Enter');
    await expectStatus(page, 'Invitation sent.');
    expect(await focusedId()).toBe('status');
    expect(await page.getByRole('table', { name: 'Pending invitations' }).textContent()).toContain('dave@acme-dash.test');
    // An invalid address: the error is shown next to the field, which gets the focus.
    for (let i = 0; i < 80 && (await focusedId()) !== emailId; i++) await page.keyboard.press('Tab');
    await page.keyboard.type('not-an-address');
    await page.keyboard.press('Enter');
    const field = page.getByLabel('Email address to invite');
    await expect.poll(() => field.getAttribute('aria-invalid')).toBe('true');
    expect(await focusedId()).toBe(emailId);
    expect(await page.locator(`#${emailId}-error`).textContent()).not.toBe('');
    expect(await page.locator('form[aria-label="Invite someone"] [data-alert]').textContent()).toMatch(/^Error: /);
  });

  it('TOTP enrolment: the QR code and the secret, confirm with a code, the recovery codes once', async () => {
    const user = await t().signUp('totp@acme-dash.test');
    g = await world.pageAs(user);
    const { page } = g;
    await page.goto(world.url('/dashboard/account'));
    await page.getByRole('button', { name: 'Set up two-step verification' }).click();
    const qr = page.getByRole('img', { name: /QR code/ });
    await expect.poll(() => qr.count()).toBe(1);
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
    const secret = await page.getByRole('textbox', { name: 'Secret key' }).inputValue();
    expect(secret).toMatch(/^[A-Z2-7]+=*$/);
    expect(await focusedId()).toBe('totp-code');
    const code = await generate({ secret, epoch: Math.floor(t().clock.now().getTime() / 1000) });
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
    const codes = page.locator('#recovery-codes li');
    await expect.poll(() => codes.count()).toBe(10);
    await page.getByRole('link', { name: 'I saved them' }).click();
    await expect.poll(() => page.locator('#mfa-state').textContent()).toContain('is on');
    expect(await page.locator('#recovery-codes').count()).toBe(0);
  });
});
