/**
 * The setup-link wizard's domains part in real Chromium: a link with scope ["domains"] adds a
 * domain, shows its TXT record with copy buttons, and verifies it against a real DNS server on
 * loopback (GATEHOUSE_DNS_SERVERS), showing what DNS answered when it fails. The same link cannot
 * touch SSO: the page does not offer it and a forged API call is refused.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, launchChromium, newGuardedPage, startServedGatehouse, type GuardedPage, type ServedGatehouse } from '../helpers/browser.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

const run = chromiumAvailable();
/** Wait for the page (a real browser and a real API, possibly on PostgreSQL under load: up to 10 s). */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });
let served: ServedGatehouse;
let dns: TestDnsServer;
let browser: Browser;
let owner: TestUser;
let orgId: string;
let link: { id: string; url: string };
let g: GuardedPage;

const t = () => served.t;

/** Open the link and press "Start setup" (this binds it to the browser), landing on the same URL. */
async function startSetup(page: GuardedPage, target: string) {
  expect((await page.page.goto(target))?.status()).toBe(200);
  expect(await page.page.getByRole('heading', { level: 1 }).textContent()).toMatch(/^Set up /);
  const [res] = await Promise.all([
    page.page.waitForResponse((r) => r.url() === target && r.request().method() === 'GET'),
    page.page.getByRole('button', { name: 'Start setup' }).click(),
  ]);
  await page.page.waitForLoadState('load');
  return res;
}

function pageFetch(method: string, path: string, body?: unknown) {
  return g.page.evaluate(async ({ method, path, linkId, body }) => {
    const res = await fetch(path, { method, credentials: 'same-origin', headers: { 'x-setup-link': linkId, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, code: ((await res.json()) as { code: string }).code };
  }, { method, path, linkId: link.id, body });
}

describe.skipIf(!run)('setup link: domains through the wizard (Chromium, real DNS)', () => {
  beforeAll(async () => {
    dns = await startDnsServer();
    served = await startServedGatehouse({ env: { GATEHOUSE_DNS_SERVERS: dns.address } });
    browser = await launchChromium();
    owner = await t().signUp('owner@initech.test');
    orgId = await createOrg(t(), owner, 'Initech', 'initech');
    const res = await t().request('POST', `/api/user/organizations/${orgId}/setup-links`, { as: owner, body: { scope: ['domains'], expiresInHours: 2 } });
    expect(res.status).toBe(201);
    link = res.body.data;
    g = await newGuardedPage(browser);
    await g.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: served.baseUrl });
  });
  afterAll(async () => {
    await closeAndCheck(g);
    await browser?.close();
    await served?.close();
    await dns?.close();
  });
  afterEach(() => g.assertLoopbackOnly());

  it('a domains-only link opens on the domains page; SSO is not offered', async () => {
    expect((await startSetup(g, link.url)).status()).toBe(200);
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('Verify your domains');
    await poll(() => g.page.locator('#domains-empty').textContent()).toBe('No domains yet.');
    expect(await g.page.getByRole('link', { name: /single sign-on/i }).count()).toBe(0);
    expect(await g.page.getByRole('navigation').count()).toBe(0);
    expect(await g.page.locator('#link-expiry').textContent()).toContain('can change only the email domains of Initech');
  });

  it('adds a domain, shows the TXT record with copy buttons; Verify shows what DNS answered, then verifies once it is published', async () => {
    // A public mail provider is refused next to the field.
    await g.page.getByRole('textbox', { name: 'Domain' }).fill('gmail.com');
    await g.page.getByRole('button', { name: 'Add domain' }).click();
    await poll(() => g.page.locator('#e-domain').textContent()).not.toBe('');
    expect(await g.page.getByRole('textbox', { name: 'Domain' }).getAttribute('aria-invalid')).toBe('true');
    expect(await g.page.getByRole('alert').textContent()).toMatch(/^Error:/);

    await g.page.getByRole('textbox', { name: 'Domain' }).fill('Initech-Corp.TEST');
    await g.page.getByRole('button', { name: 'Add domain' }).click();
    const item = g.page.locator('.domain', { hasText: 'initech-corp.test' });
    await poll(() => item.count()).toBe(1);
    expect(await g.page.getByRole('textbox', { name: 'Domain' }).getAttribute('aria-invalid')).toBeNull();
    expect(await g.page.locator('#e-domain').textContent()).toBe('');
    expect(await item.textContent()).toContain('Waiting for verification');
    expect(await g.page.getByRole('status').first().textContent()).toContain('initech-corp.test: publish the TXT record');

    await item.getByRole('button', { name: 'Copy TXT record name for initech-corp.test' }).click();
    const name = await g.page.evaluate(() => navigator.clipboard.readText());
    expect(name).toBe('_gatehouse-challenge.initech-corp.test');
    await item.getByRole('button', { name: 'Copy TXT record value for initech-corp.test' }).click();
    await poll(() => g.page.evaluate(() => navigator.clipboard.readText())).toMatch(/^gatehouse-domain-verification=/);
    const value = await g.page.evaluate(() => navigator.clipboard.readText());

    // Not published yet: NXDOMAIN, said in words.
    await item.getByRole('button', { name: 'Verify initech-corp.test' }).click();
    const result = item.locator('.verify-result');
    await poll(() => result.textContent()).toContain('DNS answered: the name does not exist (NXDOMAIN)');
    expect(await g.page.getByRole('alert').textContent()).toContain('initech-corp.test is not verified yet.');

    // A wrong value: the records DNS holds are listed.
    dns.setTxt(name, ['some-other-verification=abc']);
    await item.getByRole('button', { name: 'Verify initech-corp.test' }).click();
    await poll(() => result.textContent()).toContain('none has the expected value');
    expect(await result.textContent()).toContain('some-other-verification=abc');
    expect(await result.textContent()).toContain(`Expected: ${value}`);

    dns.setTxt(name, ['some-other-verification=abc', value]);
    await item.getByRole('button', { name: 'Verify initech-corp.test' }).click();
    await poll(() => item.textContent()).toContain('Verified');
    expect(await g.page.getByRole('status').first().textContent()).toContain('initech-corp.test is verified.');
    expect(dns.queries.some((q) => q.name === name && q.type === 'TXT')).toBe(true);

    const domains = await t().request('GET', `/api/user/organizations/${orgId}/domains`, { as: owner });
    expect(domains.body.data.items).toEqual([expect.objectContaining({ domain: 'initech-corp.test', status: 'verified' })]);
    // A reload shows the verified domain (read back through the API).
    await g.page.reload();
    await poll(() => g.page.locator('.domain').textContent()).toContain('Verified');

    const audit = await t().request('GET', `/api/user/organizations/${orgId}/audit-log?limit=100`, { as: owner });
    const viaLink = (audit.body.data.items as Array<{ action: string; actor: Record<string, unknown> }>).filter((e) => e.actor.type === 'setup_link');
    expect(viaLink.map((e) => e.action)).toEqual(expect.arrayContaining(['domain.added', 'domain.verification_failed', 'domain.verified']));
    for (const e of viaLink) expect(e.actor).toMatchObject({ setupLinkId: link.id });
  });

  it('a domains link cannot touch SSO: the SSO pages are refused and a forged PUT settings/sso is 403', async () => {
    expect((await g.page.goto(`${link.url}?idp=okta`))?.status()).toBe(403);
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('Not part of this setup link');
    const base = `/api/user/organizations/${orgId}`;
    expect(await pageFetch('PUT', `${base}/settings/sso`, { provider: 'oidc', issuerUrl: 'https://idp.example.com', clientId: 'x', clientSecret: 'y' })).toEqual({ status: 403, code: 'FORBIDDEN' });
    for (const [method, path, body] of [
      ['GET', `${base}/settings/sso`, undefined],
      ['GET', `${base}/settings/sso/service-provider`, undefined],
      ['POST', `${base}/settings/sso/test`, undefined],
      ['GET', `${base}/members`, undefined],
      ['PUT', `${base}/settings/security`, { authRequired: 'any', requireMfa: false }],
      ['GET', `${base}/audit-log`, undefined],
      ['GET', '/api/user/organizations', undefined],
    ] as const) {
      expect(await pageFetch(method, path, body), `${method} ${path}`).toMatchObject({ status: 403 });
    }
    expect((await t().request('GET', `${base}/settings/sso`, { as: owner })).status).toBe(404);
  });
});
