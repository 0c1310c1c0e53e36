import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { createApiKey } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, launchChromium, newGuardedPage, startServedGatehouse, type ServedGatehouse } from '../helpers/browser.js';

/*
 * /api/docs in Chromium: Swagger UI runs under the page's CSP (no console error, so no CSP
 * violation), loads nothing off this instance, and "Try it out" with an API key entered under
 * "Authorize" calls this instance and shows the answer.
 */
const run = chromiumAvailable();

describe.skipIf(!run)('/api/docs (Chromium)', () => {
  let served: ServedGatehouse;
  let browser: Browser;
  beforeAll(async () => {
    served = await startServedGatehouse({});
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });

  it('renders every operation, and "Try it out" with an API key gets this instance\'s answer', async () => {
    const u = await served.t.signUp('docs-reader@example.com');
    const { key } = await createApiKey(served.t, u, { name: 'docs', scopes: ['user:read'] });
    const g = await newGuardedPage(browser);
    try {
      const { page } = g;
      page.setDefaultTimeout(15_000);
      await page.goto(`${served.baseUrl}/api/docs`);
      await page.waitForSelector('.opblock', { timeout: 30_000 });
      const operations = await page.locator('.opblock').count();
      const documented = Object.values(((await served.t.request('GET', '/api/openapi.json')).body as { paths: Record<string, object> }).paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
      expect(operations).toBe(documented);

      await page.locator('button.authorize').first().click();
      const apiKeyForm = page.locator('.modal-ux form').filter({ hasText: 'X-Api-Key' });
      await apiKeyForm.locator('input').fill(key);
      await apiKeyForm.locator('button[type=submit]').click();
      await page.locator('.modal-ux').getByRole('button', { name: 'Close' }).first().click();

      const op = page.locator('#operations-Users-get_api_user_me');
      await op.locator('.opblock-summary').first().click();
      await op.getByRole('button', { name: 'Try it out' }).click();
      const [request] = await Promise.all([page.waitForRequest((r) => r.url() === `${served.baseUrl}/api/user/me`), op.getByRole('button', { name: 'Execute' }).click()]);
      expect(request.headers()['x-api-key']).toBe(key);
      const body = op.locator('.live-responses-table .response .microlight').first();
      await body.waitFor();
      expect(await body.innerText()).toContain('docs-reader@example.com');
      g.assertLoopbackOnly();
      expect(g.requests.every((r) => r.url().startsWith(served.baseUrl) || r.url().startsWith('data:'))).toBe(true);
    } finally {
      await closeAndCheck(g);
    }
  });
});
