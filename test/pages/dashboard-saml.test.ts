/**
 * SAML through the dashboard against a REAL IdP, SimpleSAMLphp (Debian package) on loopback: the
 * owner pastes the ACS URL and SP entity ID into the IdP, pastes the IdP's metadata XML (or has
 * Gatehouse import it by URL), tests, saves; then a real SAML sign-in in a second browser context
 * (Gatehouse → SimpleSAMLphp's login form → its auto-posted response → Gatehouse's ACS).
 *
 * Missing Chromium or SimpleSAMLphp: skipped with a message locally, a failure under CI=true.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, type GuardedPage } from '../helpers/browser.js';
import { DEFAULT_USERS, skipWithoutSimpleSamlPhp, startSimpleSamlPhp, type SimpleSamlPhpIdp } from '../helpers/simplesamlphp.js';
import { expectStatus, screenshotPath, startDashboardWorld, type DashboardWorld } from './dashboard-world.js';

const run = chromiumAvailable() && !skipWithoutSimpleSamlPhp();
let world: DashboardWorld;
let idp: SimpleSamlPhpIdp;
let g: GuardedPage | null = null;
let owner: TestUser;

const t = () => world.served.t;
const alice = DEFAULT_USERS[0]!;

describe.skipIf(!run)('dashboard SAML (Chromium, SimpleSAMLphp)', () => {
  beforeAll(async () => {
    world = await startDashboardWorld();
    idp = await startSimpleSamlPhp();
    owner = await t().signUp('owner@saml-dash.test');
  });
  afterAll(async () => {
    await world?.close();
    await idp?.close();
  });
  afterEach(async () => {
    await closeAndCheck(g);
    g = null;
  });

  /** Configure SAML for a new organization through the SSO page; returns its id. */
  async function configure(slug: string, metadata: 'paste' | 'url'): Promise<string> {
    const orgId = await createOrg(t(), owner, `Saml ${slug}`, slug);
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url(`/dashboard/${orgId}/sso`));
    // Paste Gatehouse's values into the IdP (SimpleSAMLphp's SP-remote metadata).
    const acsUrl = await page.getByRole('textbox', { name: 'ACS URL (single sign-on URL)' }).inputValue();
    const entityId = await page.getByRole('textbox', { name: 'SP entity ID (audience)' }).inputValue();
    expect(acsUrl).toBe(`${world.served.baseUrl}/api/auth/sso/${slug}/saml/acs`);
    idp.setSps([{ entityId, acsUrl }]);

    await page.getByLabel('SAML 2.0 (OneLogin, ADFS …)').check();
    const form = page.locator('#saml-form');
    expect(await form.isVisible()).toBe(true);
    expect(await page.locator('#oidc-form').isVisible()).toBe(false);
    if (metadata === 'paste') await form.getByLabel('Paste the IdP metadata XML').fill(await idp.metadataXml());
    else await form.getByLabel('Or import it from a metadata URL').fill(idp.metadataUrl);
    await form.getByRole('button', { name: 'Test these settings' }).click();
    const out = form.locator('[data-output]');
    await expect.poll(() => out.textContent(), { timeout: 15_000 }).toContain('Test passed');
    expect((await out.locator('li.fail').count())).toBe(0);
    await form.getByRole('button', { name: 'Save' }).click();
    await expectStatus(page, 'SSO connection saved.');
    expect(await page.locator('#conn-heading').count()).toBe(1);
    expect(await page.locator('.facts').first().textContent()).toContain('SAML 2.0');
    expect(await page.locator('.facts').first().textContent()).toContain(idp.entityId);
    return orgId;
  }

  it('metadata XML pasted: Test shows the checks, Save, then a real SAML sign-in in a second browser works', async () => {
    const orgId = await configure('saml-paste', 'paste');
    await g!.page.screenshot({ path: screenshotPath('sso-saml'), fullPage: true });
    await closeAndCheck(g);

    g = await world.pageAs(null);
    const { page } = g;
    await page.goto(world.url('/api/auth/sso/saml-paste/login?returnTo=%2Fdashboard'));
    expect(new URL(page.url()).origin).toBe(new URL(idp.baseUrl).origin);
    await page.locator('input[name="username"]').fill(alice.username);
    await page.locator('input[name="password"]').fill(alice.password);
    await Promise.all([page.waitForURL(world.url(`/dashboard/${orgId}/members`), { timeout: 20_000 }), page.locator('input[name="password"]').press('Enter')]);
    const cookie = (await g.context.cookies(world.served.baseUrl)).find((c) => c.name === 'gatehouse_session')!;
    const session = await t().request('GET', '/api/auth/session', { as: { cookie: cookie.value } });
    expect(session.body.data.user.email).toBe(alice.attributes.email);
    expect(session.body.data.session.authMethod).toBe('sso');
  });

  it('metadata imported by URL; such a connection can be disabled with one button', async () => {
    const orgId = await configure('saml-url', 'url');
    const saved = await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(saved.body.data).toMatchObject({ protocol: 'saml', idpEntityId: idp.entityId, idpMetadataUrl: idp.metadataUrl, enabled: true });
    await g!.page.getByRole('button', { name: 'Disable SSO' }).click();
    await expectStatus(g!.page, 'SSO disabled.');
    const after = await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(after.body.data).toMatchObject({ enabled: false, idpEntityId: idp.entityId, idpMetadataUrl: idp.metadataUrl });
  });
});
