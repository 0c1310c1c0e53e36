/**
 * The dashboard's Domains section in Chromium, with Gatehouse resolving against a real DNS server
 * on loopback (GATEHOUSE_DNS_SERVERS): add a domain, see the TXT record to publish, press Verify
 * and see what DNS answered (nothing, a wrong value), publish the right record, verified; then
 * the auto-join settings and removal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, type GuardedPage } from '../helpers/browser.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { expectStatus, screenshotPath, startDashboardWorld, type DashboardWorld } from './dashboard-world.js';

const run = chromiumAvailable();
let world: DashboardWorld;
let dns: TestDnsServer;
let g: GuardedPage | null = null;
let owner: TestUser;
let orgId: string;

const t = () => world.served.t;

describe.skipIf(!run)('dashboard domains (Chromium, real DNS server)', () => {
  beforeAll(async () => {
    dns = await startDnsServer();
    world = await startDashboardWorld({ GATEHOUSE_DNS_SERVERS: dns.address });
    owner = await t().signUp('owner@dns-dash.test');
    orgId = await createOrg(t(), owner, 'Acme DNS', 'acme-dns');
  });
  afterAll(async () => {
    await world?.close();
    await dns?.close();
  });
  afterEach(async () => {
    await closeAndCheck(g);
    g = null;
  });

  it('adds a domain, shows the TXT record, and Verify shows what DNS answered until the record is right', async () => {
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url(`/dashboard/${orgId}/domains`));
    await page.getByLabel('Domain', { exact: true }).fill('Acme-Corp.example');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await expectStatus(page, 'Domain added');
    const card = page.locator('li.domain', { hasText: 'acme-corp.example' });
    const name = await card.getByRole('textbox', { name: 'TXT record name for acme-corp.example' }).inputValue();
    const value = await card.getByRole('textbox', { name: 'TXT record value for acme-corp.example' }).inputValue();
    expect(name).toBe('_gatehouse-challenge.acme-corp.example');
    expect(value).toMatch(/^gatehouse-domain-verification=/);

    // Nothing published yet: DNS says the name does not exist.
    const verify = card.getByRole('button', { name: 'Verify acme-corp.example' });
    await verify.click();
    const out = card.locator('[id^="verify-output-"]');
    await expect.poll(() => out.textContent()).toContain('what DNS answered');
    expect(await out.textContent()).toContain('NXDOMAIN');
    expect(await page.evaluate(() => document.activeElement?.classList.contains('form-output'))).toBe(true);
    expect(dns.queries.some((q) => q.name === name && q.type === 'TXT')).toBe(true);

    // A wrong record: the page lists what was found.
    dns.setTxt(name, ['gatehouse-domain-verification=typo', 'v=spf1 -all']);
    await verify.click();
    await expect.poll(() => out.locator('li').allTextContents()).toEqual(['gatehouse-domain-verification=typo', 'v=spf1 -all']);
    expect(await out.textContent()).toContain('wrong_value');
    await page.screenshot({ path: screenshotPath('domains'), fullPage: true });

    // The right record: verified.
    dns.setTxt(name, [value]);
    await verify.click();
    await expectStatus(page, 'acme-corp.example verified.');
    expect(await page.locator('li.domain .badge').textContent()).toBe('verified');
    expect(await page.locator('li.domain').getByRole('button', { name: /^Verify/ }).count()).toBe(0);
    const api = await t().request('GET', `/api/user/organizations/${orgId}/domains`, { as: owner });
    expect(api.body.data.items[0]).toMatchObject({ domain: 'acme-corp.example', status: 'verified' });
  });

  it('auto-join settings are saved; a generic mail domain is refused next to the field; removal asks first', async () => {
    g = await world.pageAs(owner);
    const { page } = g;
    await page.goto(world.url(`/dashboard/${orgId}/domains`));
    const card = page.locator('li.domain', { hasText: 'acme-corp.example' });
    await card.getByLabel('People with a verified @acme-corp.example address join automatically').check();
    await card.getByLabel('An admin approves each join request').check();
    await card.getByRole('button', { name: 'Save auto-join settings' }).click();
    await expectStatus(page, 'Auto-join settings of acme-corp.example saved.');
    const api = await t().request('GET', `/api/user/organizations/${orgId}/domains`, { as: owner });
    expect(api.body.data.items[0].settings).toEqual({ autoJoin: true, requireApproval: true, role: 'member' });

    const input = page.getByLabel('Domain', { exact: true });
    await input.fill('gmail.com');
    await page.getByRole('button', { name: 'Add domain' }).click();
    const alert = page.locator('form[aria-label="Add a domain"] [data-alert]');
    await expect.poll(() => alert.textContent()).toMatch(/^Error: /);

    await page.getByRole('button', { name: 'Remove acme-corp.example' }).click();
    await expectStatus(page, 'acme-corp.example removed.');
    expect(await page.locator('li.domain').count()).toBe(0);
  });
});
