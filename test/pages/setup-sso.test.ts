/**
 * The setup-link wizard (/setup/{token}, SPEC §5) in real Chromium against a Gatehouse served on
 * 127.0.0.1, with the certified oidc-provider as the customer's IdP. The customer's IT admin has no
 * account: a second browser context opens the link the owner created, follows the steps, tests
 * and saves; then a real SSO login goes through the new connection. Every request off loopback,
 * and every console error (a CSP violation included), fails the test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAY } from '../../src/clock.js';
import { createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, newGuardedPage, type GuardedPage } from '../helpers/browser.js';
import { browserSession, loginAtIdpAs, startWorld, type World } from './world.js';

const run = chromiumAvailable();
/** Wait for the page (a real browser and a real API, possibly on PostgreSQL under load: up to 10 s). */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });
let world: World;
let owner: TestUser;
let orgId: string;
const pages: GuardedPage[] = [];

const t = () => world.served.t;
const url = (path: string) => `${world.served.baseUrl}${path}`;

async function guarded(): Promise<GuardedPage> {
  const g = await newGuardedPage(world.browser);
  pages.push(g);
  return g;
}

async function createLink(scope: string[], org = orgId): Promise<{ id: string; url: string }> {
  const res = await t().request('POST', `/api/user/organizations/${org}/setup-links`, { as: owner, body: { scope } });
  if (res.status !== 201) throw new Error(`POST setup-links failed: ${res.status} ${res.text}`);
  return res.body.data;
}

/** Open the link and press "Start setup" (this binds it to the browser), landing on the same URL. */
async function startSetup(g: GuardedPage, target: string) {
  expect((await g.page.goto(target))?.status()).toBe(200);
  expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toMatch(/^Set up /);
  const [res] = await Promise.all([
    g.page.waitForResponse((r) => r.url() === target && r.request().method() === 'GET'),
    g.page.getByRole('button', { name: 'Start setup' }).click(),
  ]);
  await g.page.waitForLoadState('load');
  return res;
}

/** A request from inside the page, as its script would make it (same origin, the link's header). */
function pageFetch(g: GuardedPage, method: string, path: string, linkId: string, body?: unknown) {
  return g.page.evaluate(async ({ method, path, linkId, body }) => {
    const res = await fetch(path, { method, credentials: 'same-origin', headers: { 'x-setup-link': linkId, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, code: ((await res.json()) as { code: string }).code };
  }, { method, path, linkId, body });
}

describe.skipIf(!run)('setup link: SSO through the wizard (Chromium)', () => {
  beforeAll(async () => {
    world = await startWorld([{ sub: 'carol-sub', email: 'carol@globex-sso.test', email_verified: true, name: 'Carol Globex' }]);
    owner = await t().signUp('owner@globex.test');
    orgId = await createOrg(t(), owner, 'Globex', 'globex');
  });
  afterAll(async () => {
    await world?.close();
  });
  afterEach(async () => {
    for (const g of pages.splice(0)) await closeAndCheck(g);
  });

  let ssoLink: { id: string; url: string };
  let admin: GuardedPage;

  it('an IT admin without an account opens the link, follows "Other OIDC", tests and saves; a real SSO login then works; the audit log names the link', async () => {
    ssoLink = await createLink(['sso']);
    expect(ssoLink.url).toMatch(new RegExp(`^${world.served.baseUrl}/setup/`));
    admin = await newGuardedPage(world.browser); // kept open for the next tests (the bound browser)
    await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: world.served.baseUrl });
    // Opening the URL binds nothing: the page says what the link is for and offers to start.
    const preview = await admin.page.goto(ssoLink.url);
    expect(preview?.headers()['referrer-policy']).toBe('no-referrer');
    expect(await admin.page.locator('#start-text').textContent()).toContain('Globex asked you to connect its identity provider');
    expect(await admin.context.cookies(world.served.baseUrl)).toEqual([]);
    const res = await startSetup(admin, ssoLink.url);
    expect(res.status()).toBe(200);
    expect(res.headers()['referrer-policy']).toBe('no-referrer');
    expect(res.headers()['cache-control']).toBe('no-store');
    expect(await admin.page.getByRole('heading', { level: 1 }).textContent()).toBe('Set up single sign-on');
    expect(await admin.page.locator('#org-name').textContent()).toBe('Globex');
    const cookie = (await admin.context.cookies(world.served.baseUrl)).find((c) => c.name === `gatehouse_setup_${ssoLink.id}`);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });

    // Every IdP of SPEC §5 is offered.
    for (const name of ['Okta', 'Microsoft Entra ID', 'Google Workspace', 'OneLogin', 'Auth0', 'Other OpenID Connect provider', 'Other SAML 2.0 provider']) {
      expect(await admin.page.getByRole('link', { name: new RegExp(`^${name}`) }).count()).toBe(1);
    }
    await Promise.all([admin.page.waitForURL(/\?idp=oidc$/), admin.page.getByRole('link', { name: /^Other OpenID Connect provider/ }).click()]);
    expect(await admin.page.getByRole('heading', { level: 1 }).textContent()).toBe('Set up Other OpenID Connect provider');

    // The values to paste come from the API; Copy puts the redirect URI on the clipboard.
    const redirect = admin.page.locator('[data-sp="redirectUri"]');
    await poll(() => redirect.getAttribute('data-ready')).toBe('true');
    const redirectUri = (await redirect.textContent())!;
    expect(redirectUri).toBe(url(`/api/auth/sso/callback/${orgId}`));
    await admin.page.getByRole('button', { name: 'Copy Redirect URI (callback URL)' }).click();
    await poll(() => admin.page.evaluate(() => navigator.clipboard.readText())).toBe(redirectUri);
    expect(await admin.page.locator('#copy-status').textContent()).toBe('Copied Redirect URI (callback URL).');
    expect(await admin.page.locator('#s-clientSecret').textContent()).toBe('No client secret is saved yet.');
    await world.idp.addRedirectUri(await admin.page.evaluate(() => navigator.clipboard.readText()));

    // Save with nothing entered: each problem is shown next to its field and in the alert region.
    await admin.page.getByRole('button', { name: 'Save' }).click();
    await poll(() => admin.page.locator('#e-issuerUrl').textContent()).not.toBe('');
    expect(await admin.page.getByLabel('Issuer URL').getAttribute('aria-invalid')).toBe('true');
    expect(await admin.page.locator('#e-clientId').textContent()).not.toBe('');
    expect(await admin.page.getByRole('alert').textContent()).toContain('Please correct the following:');
    expect(await admin.page.evaluate(() => document.activeElement?.id)).toBe('error');

    await admin.page.getByLabel('Issuer URL').fill(world.idp.issuer);
    await admin.page.getByLabel('Client ID').fill(world.idp.clientId);
    await admin.page.getByLabel('Client secret').fill(world.idp.clientSecret);
    await admin.page.getByRole('button', { name: 'Test' }).click();
    const checks = admin.page.locator('#test-checks li');
    await poll(() => checks.count()).toBeGreaterThan(2);
    expect(await admin.page.locator('#test-checks li.failed').count()).toBe(0);
    expect(await admin.page.locator('#test-checks').textContent()).toMatch(/Passed: discovery/);
    expect(await admin.page.getByRole('status').first().textContent()).toContain('Test passed.');
    // The test saved nothing.
    expect((await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).status).toBe(404);

    await admin.page.getByRole('button', { name: 'Save' }).click();
    const saved = admin.page.locator('#saved');
    await poll(() => saved.isVisible()).toBe(true);
    const loginUrl = (await admin.page.locator('#pv-saved-login').textContent())!;
    expect(loginUrl).toBe(url('/api/auth/sso/globex/login'));
    expect(await admin.page.getByLabel('Client secret').inputValue()).toBe('');
    expect(await admin.page.locator('#s-clientSecret').textContent()).toBe('A client secret is saved. Leave this empty to keep it.');
    // The secret never came back to the page, and the token went into no other URL.
    expect(await admin.page.content()).not.toContain(world.idp.clientSecret);
    const token = new URL(ssoLink.url).pathname.split('/').pop()!;
    expect(admin.requests.map((r) => r.url()).filter((u) => u.includes(token) && !u.startsWith(ssoLink.url))).toEqual([]);

    // Saved turned off: an owner reviews and turns it on (the page says so).
    expect(await admin.page.locator('#saved-pending').isVisible()).toBe(true);
    expect(await admin.page.getByRole('status').first().textContent()).toContain('An owner of Globex must now turn single sign-on on');
    const settings = await t().request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(settings.body.data).toMatchObject({ provider: 'oidc', issuerUrl: world.idp.issuer, clientId: world.idp.clientId, hasClientSecret: true, enabled: false });
    const enable = await t().request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'oidc', issuerUrl: world.idp.issuer, clientId: world.idp.clientId, enabled: true } });
    expect(enable.status).toBe(200);

    // Now on, the wizard no longer offers to save over it.
    await admin.page.reload();
    await poll(() => admin.page.locator('#existing-connection').textContent()).toContain('Globex already has single sign-on turned on');
    expect(await admin.page.getByRole('button', { name: 'Save' }).isVisible()).toBe(false);
    expect(await admin.page.getByLabel('Issuer URL').inputValue()).toBe(world.idp.issuer);
    expect(await pageFetch(admin, 'PUT', `/api/user/organizations/${orgId}/settings/sso`, ssoLink.id, { provider: 'oidc', issuerUrl: world.idp.issuer, clientId: 'other', clientSecret: 'x' })).toEqual({ status: 409, code: 'CONFLICT' });

    // Carol signs in through the new connection (a browser of her own).
    const carol = await guarded();
    await loginAtIdpAs(world, carol, 'carol-sub');
    await Promise.all([carol.page.waitForURL(url('/welcome'), { timeout: 20_000 }), carol.page.goto(`${loginUrl}?returnTo=%2Fwelcome`)]);
    const s = await browserSession(world, carol);
    expect(s?.user.email).toBe('carol@globex-sso.test');
    expect(s?.session).toMatchObject({ authMethod: 'sso', organizationId: orgId });

    const audit = await t().request('GET', `/api/user/organizations/${orgId}/audit-log?limit=100`, { as: owner });
    const viaLink = (audit.body.data.items as Array<{ action: string; actor: Record<string, unknown> }>).filter((e) => e.actor.type === 'setup_link');
    expect(viaLink.map((e) => e.action)).toEqual(expect.arrayContaining(['setup_link.opened', 'sso.connection_created']));
    for (const e of viaLink) expect(e.actor).toMatchObject({ type: 'setup_link', setupLinkId: ssoLink.id, userId: null });
  });

  it('the page and the API refuse a third browser: the link is bound to the first one', async () => {
    const other = await guarded();
    const res = await other.page.goto(ssoLink.url);
    expect(res?.status()).toBe(403);
    expect(await other.page.getByRole('heading', { level: 1 }).textContent()).toBe('This setup link is in use in another browser');
    expect(await other.page.getByRole('alert').textContent()).toContain('ask for a new one');
    expect(await pageFetch(other, 'GET', `/api/user/organizations/${orgId}/settings/sso`, ssoLink.id)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    // The first browser still works.
    expect((await admin.page.reload())?.status()).toBe(200);
    expect(await pageFetch(admin, 'GET', `/api/user/organizations/${orgId}/settings/sso`, ssoLink.id)).toEqual({ status: 200, code: 'OK' });
  });

  it('an SSO link reaches nothing but SSO settings: members, security settings, domains and setup links are 403', async () => {
    for (const [method, path, body] of [
      ['GET', `/api/user/organizations/${orgId}/members`, undefined],
      ['PUT', `/api/user/organizations/${orgId}/settings/security`, { authRequired: 'sso' }],
      ['GET', `/api/user/organizations/${orgId}/domains`, undefined],
      ['POST', `/api/user/organizations/${orgId}/setup-links`, { scope: ['sso'] }],
      ['DELETE', `/api/user/organizations/${orgId}/settings/sso`, undefined],
    ] as const) {
      expect(await pageFetch(admin, method, path, ssoLink.id, body), `${method} ${path}`).toMatchObject({ status: 403 });
    }
    // Without the header, the cookie alone is no credential at all.
    const bare = await admin.page.evaluate(async (p) => (await fetch(p, { credentials: 'same-origin' })).status, `/api/user/organizations/${orgId}/settings/sso`);
    expect(bare).toBe(401);
    // The domains part is not offered by an SSO-only link.
    expect(await admin.page.getByRole('link', { name: 'Domains' }).count()).toBe(0);
    expect((await admin.page.goto(`${ssoLink.url}?step=domains`))?.status()).toBe(403);
    expect(await admin.page.getByRole('heading', { level: 1 }).textContent()).toBe('Not part of this setup link');
  });

  it('revoked by the owner: the bound browser\'s next page load and API call are refused', async () => {
    const del = await t().request('DELETE', `/api/user/organizations/${orgId}/setup-links/${ssoLink.id}`, { as: owner });
    expect(del.status).toBe(200);
    expect(await pageFetch(admin, 'GET', `/api/user/organizations/${orgId}/settings/sso/service-provider`, ssoLink.id)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    const res = await admin.page.goto(`${ssoLink.url}?idp=okta`);
    expect(res?.status()).toBe(410);
    expect(await admin.page.getByRole('heading', { level: 1 }).textContent()).toBe('This setup link was withdrawn');
    await closeAndCheck(admin);
  });

  it('an unknown token is a 404 page that says nothing about any link', async () => {
    const g = await guarded();
    const res = await g.page.goto(url('/setup/gsl_not-a-real-token'));
    expect(res?.status()).toBe(404);
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('Setup link not found');
    expect(await g.page.locator('#org-name').count()).toBe(0);
  });

  // Last: it moves the shared clock a day on.
  it('expired (the clock passes expiresAt): the page and the API are refused', async () => {
    const link = await createLink(['sso', 'domains']);
    const g = await guarded();
    expect((await startSetup(g, link.url)).status()).toBe(200);
    expect(await pageFetch(g, 'GET', `/api/user/organizations/${orgId}/settings/sso`, link.id)).toEqual({ status: 200, code: 'OK' });
    t().clock.advance(DAY + 60_000);
    expect(await pageFetch(g, 'GET', `/api/user/organizations/${orgId}/settings/sso`, link.id)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    const res = await g.page.reload();
    expect(res?.status()).toBe(410);
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('This setup link has expired');
  });
});
