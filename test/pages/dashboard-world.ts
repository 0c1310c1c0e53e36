/** Shared set-up of the dashboard browser tests: a served Gatehouse, Chromium, and helpers to drive /dashboard. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { TestUser } from '../helpers/app.js';
import { launchChromium, newGuardedPage, screenshotFile, startServedGatehouse, type GuardedPage, type ServedGatehouse } from '../helpers/browser.js';

export interface DashboardWorld {
  served: ServedGatehouse;
  browser: Browser;
  url(path: string): string;
  /** A guarded page (loopback only, no console/CSP error) whose browser is signed in as `user`. */
  pageAs(user: TestUser | null): Promise<DashboardPage>;
  close(): Promise<void>;
}

/** A guarded page that accepts every confirm() and records what it asked. */
export type DashboardPage = GuardedPage & { dialogs: string[] };

export const VIEWPORT = { width: 1280, height: 900 };

export async function startDashboardWorld(env: Record<string, string> = {}): Promise<DashboardWorld> {
  const served = await startServedGatehouse({
    env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', ...env },
    rateLimits: { 'sign-in:ip': { points: 10_000, duration: 300 }, 'sign-up:ip': { points: 10_000, duration: 3600 } },
  });
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (e) {
    await served.close();
    throw e;
  }
  const url = (path: string) => `${served.baseUrl}${path}`;
  return {
    served,
    browser,
    url,
    async pageAs(user) {
      const g = await newGuardedPage(browser);
      await g.page.setViewportSize(VIEWPORT);
      if (user) await g.context.addCookies([{ name: 'gatehouse_session', value: user.cookie, url: served.baseUrl, httpOnly: true, sameSite: 'Lax' }]);
      // Remove and other destructive buttons ask first: the tests say yes (and can read what was asked).
      const dialogs: string[] = [];
      g.page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.accept();
      });
      return { ...g, dialogs };
    },
    async close() {
      await browser.close();
      await served.close();
    },
  };
}

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const AXE_SOURCE = readFileSync(AXE_PATH, 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * Run axe-core in the page. Evaluated through the DevTools protocol, which the page CSP does not
 * govern (an injected <script> would be inline and refused). Returns the serious and critical
 * violations, as "rule: help (targets)".
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run();
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')})`);
}

/** Wait until the status region says `text` (the message a write leaves, also across its reload). */
export async function expectStatus(page: Page, text: string | RegExp): Promise<void> {
  const status = page.locator('#status');
  const read = async () => (await status.textContent().catch(() => '')) ?? '';
  if (typeof text === 'string') await expect.poll(read, { timeout: 15_000 }).toContain(text);
  else await expect.poll(read, { timeout: 15_000 }).toMatch(text);
}

export const screenshotPath = (name: string) => screenshotFile(`dashboard-${name}.png`);
