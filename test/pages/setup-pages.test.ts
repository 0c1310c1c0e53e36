/**
 * The setup-link wizard's pages in real Chromium: axe-core finds no serious or critical violation
 * on any of them, they work from the keyboard, a SAML IdP (Google Workspace) is saved from its
 * uploaded metadata, and the user guide's screenshots (setup-*.png, 1280×900; docs/screenshots/ with npm run screenshots)
 * are taken from the real pages.
 */
import { readFileSync } from 'node:fs';
import type { AxeResults } from 'axe-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, newGuardedPage, screenshotFile, type GuardedPage } from '../helpers/browser.js';
import { startWorld, type World } from './world.js';

const run = chromiumAvailable();
/** Wait for the page (a real browser and a real API, possibly on PostgreSQL under load: up to 10 s). */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });
const AXE = readFileSync('node_modules/axe-core/axe.min.js', 'utf8');
const IDP_CERT = readFileSync(new URL('../fixtures/saml/idp.crt', import.meta.url), 'utf8');

let world: World;
let owner: TestUser;
let orgId: string;
let link: { id: string; url: string };
let g: GuardedPage;

const t = () => world.served.t;

/** Serious and critical axe-core violations of the page as it is now (injected through DevTools: CSP does not apply). */
async function axeProblems(): Promise<string[]> {
  await g.page.evaluate(AXE);
  const results = await g.page.evaluate(() => (window as unknown as { axe: { run(): Promise<AxeResults> } }).axe.run());
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function open(query = ''): Promise<void> {
  const res = await g.page.goto(`${link.url}${query}`);
  expect(res?.status()).toBe(200);
}

/** The values to paste have arrived from the API. */
async function valuesLoaded(): Promise<void> {
  await poll(() => g.page.locator('[data-sp]:not([data-ready])').count()).toBe(0);
}

async function shot(name: string): Promise<void> {
  // No focus ring or status outline in the guide's pictures.
  await g.page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
  await g.page.screenshot({ path: screenshotFile(`setup-${name}.png`) });
}

describe.skipIf(!run)('setup-link wizard pages (Chromium, axe-core)', () => {
  beforeAll(async () => {
    world = await startWorld();
    owner = await t().signUp('owner@hooli.test');
    orgId = await createOrg(t(), owner, 'Hooli', 'hooli');
    const res = await t().request('POST', `/api/user/organizations/${orgId}/setup-links`, { as: owner, body: { scope: ['sso', 'domains'] } });
    expect(res.status).toBe(201);
    link = res.body.data;
    g = await newGuardedPage(world.browser);
    await g.page.setViewportSize({ width: 1280, height: 900 });
  });
  afterAll(async () => {
    await closeAndCheck(g);
    await world?.close();
  });
  afterEach(() => g.assertLoopbackOnly());

  it('the start page: no serious violation; Start setup from the keyboard', async () => {
    expect((await g.page.goto(link.url))?.status()).toBe(200);
    expect(await axeProblems()).toEqual([]);
    await shot('start');
    await g.page.getByRole('button', { name: 'Start setup' }).focus();
    await Promise.all([g.page.waitForResponse((r) => r.url() === link.url && r.request().method() === 'GET'), g.page.keyboard.press('Enter')]);
    await g.page.waitForLoadState('load');
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('Set up single sign-on');
  });

  it('the IdP choice page: no serious violation; reachable and usable from the keyboard', async () => {
    await open();
    expect(await axeProblems()).toEqual([]);
    await shot('choice');
    expect(await g.page.getByRole('navigation', { name: 'Setup sections' }).textContent()).toContain('Domains');
    // Tab to the Okta choice and press Enter.
    for (let i = 0; i < 20 && (await g.page.evaluate(() => document.activeElement?.id)) !== 'idp-okta'; i++) await g.page.keyboard.press('Tab');
    expect(await g.page.evaluate(() => document.activeElement?.id)).toBe('idp-okta');
    await Promise.all([g.page.waitForURL(/\?idp=okta$/), g.page.keyboard.press('Enter')]);
  });

  it("Okta's steps name Okta's own screens and carry the values to paste; no serious violation", async () => {
    await open('?idp=okta');
    await valuesLoaded();
    const text = (await g.page.locator('.steps').textContent())!;
    for (const words of ['Applications → Applications → Create App Integration', 'OIDC - OpenID Connect', 'Web Application', 'Sign-in redirect URIs', 'Assignments']) expect(text).toContain(words);
    expect(await g.page.locator('[data-sp="redirectUri"]').first().textContent()).toBe(`${world.served.baseUrl}/api/auth/sso/callback/${orgId}`);
    expect(await axeProblems()).toEqual([]);
    await shot('okta');
    // The form in keyboard order: issuer, client id, secret, Test, Save.
    await g.page.getByLabel('Okta domain (issuer URL)').focus();
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      await g.page.keyboard.press('Tab');
      order.push((await g.page.evaluate(() => document.activeElement?.id)) ?? '');
    }
    expect(order).toEqual(['f-clientId', 'f-clientSecret', 'test-button', 'save-button']);
  });

  it("Entra ID's steps: the admin center's menus and the v2.0 issuer; no serious violation", async () => {
    await open('?idp=entra');
    await valuesLoaded();
    const text = (await g.page.locator('.steps').textContent())!;
    for (const words of ['Microsoft Entra admin center', 'App registrations → New registration', 'Redirect URI', 'Web', 'Certificates & secrets → Client secrets → New client secret', 'https://login.microsoftonline.com/{tenant}/v2.0']) expect(text).toContain(words);
    expect(await axeProblems()).toEqual([]);
    await shot('entra');
  });

  it('Entra ID: allowed tenants go as a list, and a bad one is shown next to its field; an unreachable issuer fails the test with its check', async () => {
    await open('?idp=entra');
    await valuesLoaded();
    await g.page.getByLabel('Issuer URL').fill('http://127.0.0.1:9/common/v2.0');
    await g.page.getByLabel('Application (client) ID').fill('app-id');
    await g.page.getByLabel('Client secret value').fill('s3cret');
    await g.page.getByLabel('Allowed tenant IDs (multi-tenant apps only)').fill('72f988bf-86f1-41af-91ab-2d7cd011db47, not-a-tenant');
    const sent: unknown[] = [];
    g.page.on('request', (r) => {
      if (r.url().endsWith('/settings/sso/test')) sent.push(r.postDataJSON());
    });
    await g.page.getByRole('button', { name: 'Test' }).click();
    await poll(() => g.page.locator('#e-allowedTenants').textContent()).toContain('must be a tenant id');
    expect(sent[0]).toMatchObject({ protocol: 'oidc', provider: 'azure', allowedTenants: ['72f988bf-86f1-41af-91ab-2d7cd011db47', 'not-a-tenant'] });
    expect(await g.page.getByLabel('Allowed tenant IDs (multi-tenant apps only)').getAttribute('aria-invalid')).toBe('true');

    await g.page.getByLabel('Allowed tenant IDs (multi-tenant apps only)').fill('');
    await g.page.getByRole('button', { name: 'Test' }).click();
    await poll(() => g.page.locator('#test-checks li.failed').count()).toBeGreaterThan(0);
    expect(await g.page.locator('#test-checks').textContent()).toMatch(/Failed: discovery/);
    expect(await g.page.locator('#test-summary').textContent()).toContain('The test failed');
    expect(await g.page.getByLabel('Allowed tenant IDs (multi-tenant apps only)').getAttribute('aria-invalid')).toBeNull();
    expect(await g.page.getByRole('alert').textContent()).toMatch(/^Error:/);
    expect(await axeProblems()).toEqual([]);
  });

  it('OneLogin: the ACS URL validator is the anchored, escaped ACS URL', async () => {
    await open('?idp=onelogin');
    await valuesLoaded();
    const acs = (await g.page.locator('[data-sp="acsUrl"]').first().textContent())!;
    const validator = (await g.page.locator('[data-sp="acsUrlValidator"]').textContent())!;
    expect(validator.startsWith('^') && validator.endsWith('$')).toBe(true);
    expect(new RegExp(validator).test(acs)).toBe(true);
    expect(new RegExp(validator).test(`${acs}x`)).toBe(false);
    expect(await g.page.locator('.steps').textContent()).toContain('SAML Custom Connector (Advanced)');
  });

  it('Google Workspace (SAML): no serious violation; the uploaded metadata is tested and saved', async () => {
    await open('?idp=google');
    await valuesLoaded();
    const text = (await g.page.locator('.steps').textContent())!;
    for (const words of ['Apps → Web and mobile apps → Add app → Add custom SAML app', 'Download metadata', 'ACS URL', 'Entity ID']) expect(text).toContain(words);
    expect(await axeProblems()).toEqual([]);
    await shot('google');

    const entityId = 'https://accounts.google.com/o/saml2?idpid=C0hooli';
    const der = IDP_CERT.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const metadata = `<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entityId}"><md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://accounts.google.com/o/saml2/idp?idpid=C0hooli"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
    await g.page.getByLabel('Upload the metadata file').setInputFiles({ name: 'GoogleIDPMetadata.xml', mimeType: 'application/xml', buffer: Buffer.from(metadata) });
    await poll(() => g.page.getByLabel('Google IdP metadata').inputValue()).toBe(metadata);
    await g.page.getByRole('button', { name: 'Test' }).click();
    await poll(() => g.page.locator('#test-checks li').count()).toBeGreaterThan(0);
    expect(await g.page.locator('#test-checks li.failed').count()).toBe(0);
    expect(await axeProblems()).toEqual([]);
    await g.page.getByRole('button', { name: 'Save' }).click();
    await poll(() => g.page.locator('#saved').isVisible()).toBe(true);
    const saved = await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(saved.body.data).toMatchObject({ protocol: 'saml', provider: 'google', idpEntityId: entityId });
    expect(saved.body.data.enabled).toBe(false);
    // Reopened, the page says a connection waits for an owner and that saving replaces it.
    await open('?idp=okta');
    await poll(() => g.page.locator('#existing-connection').textContent()).toContain('A SAML connection (google) saved earlier is waiting for an owner of Hooli to turn it on');
  });

  it('a SAML form with nothing given shows each missing field next to it (the manual fields open)', async () => {
    await open('?idp=saml');
    await valuesLoaded();
    await g.page.getByRole('button', { name: 'Test' }).click();
    await poll(() => g.page.locator('#e-idpEntityId').textContent()).not.toBe('');
    expect(await g.page.locator('#manual-details').getAttribute('open')).not.toBeNull();
    expect(await g.page.getByLabel('Single sign-on URL').getAttribute('aria-invalid')).toBe('true');
    expect(await axeProblems()).toEqual([]);
  });

  it('the domains page, with a domain waiting for its TXT record: no serious violation', async () => {
    await open('?step=domains');
    await g.page.getByRole('textbox', { name: 'Domain' }).fill('hooli.test');
    await g.page.keyboard.press('Enter');
    await poll(() => g.page.locator('.domain').count()).toBe(1);
    expect(await axeProblems()).toEqual([]);
    await shot('domains');
  });

  it('the refusal pages: no serious violation', async () => {
    expect((await g.page.goto(`${world.served.baseUrl}/setup/gsl_unknown`))?.status()).toBe(404);
    expect(await axeProblems()).toEqual([]);
    const other = await newGuardedPage(world.browser);
    try {
      expect((await other.page.goto(link.url))?.status()).toBe(403);
      await other.page.evaluate(AXE);
      const results = await other.page.evaluate(() => (window as unknown as { axe: { run(): Promise<AxeResults> } }).axe.run());
      expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
    } finally {
      await closeAndCheck(other);
    }
  });
});
