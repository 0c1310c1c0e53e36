/**
 * Real-browser tests: Debian's Chromium driven by playwright-core (never a downloaded browser),
 * and Gatehouse served over real HTTP on 127.0.0.1 so the browser talks to it like a user would.
 *
 * Network rule: every request the browser attempts that is not to loopback is aborted and
 * recorded; `assertLoopbackOnly()` fails the test if there was any.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';
import { createTestGatehouse, type TestGatehouse, type TestOptions } from './app.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions', '--metrics-recording-only',
  '--no-default-browser-check',
];

/**
 * Second and third layers of the loopback rule, below the request router (which does not see the
 * hops of a redirect): every non-loopback request goes to a proxy on a closed loopback port, and
 * no host name other than localhost resolves.
 */
export const LOOPBACK_ONLY_ARGS = [
  '--proxy-server=http://127.0.0.1:9',
  '--proxy-bypass-list=<-loopback>;localhost;127.0.0.1/8;[::1]',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/**
 * Whether the browser tests can run. Missing Chromium: a skip with a message on a developer
 * machine, a failure under CI=true (DESIGN.md "Tests": nothing silently skipped in CI).
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const message = `${CHROMIUM_PATH} not found: install Debian's chromium package (apt-get install chromium) to run the browser tests`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: refusing to skip)`);
  console.warn(`[browser tests skipped] ${message}`);
  return false;
}

/**
 * Launch Chromium. playwright-core's launch() gives every browser a fresh temporary
 * --user-data-dir (mkdtemp under the OS temp dir) and deletes it on close().
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...LOOPBACK_ONLY_ARGS], timeout: 30_000 });
}

export function isLoopbackUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.protocol === 'data:' || url.protocol === 'about:' || url.protocol === 'blob:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export interface GuardedPage {
  context: BrowserContext;
  page: Page;
  /** Requests the guard aborted (anything not to loopback). */
  blocked: string[];
  /** Console errors and uncaught page errors (a CSP violation shows up here). */
  consoleErrors: string[];
  /** Every request the page made, in order (method and URL). */
  requests: Request[];
  assertLoopbackOnly(): void;
  close(): Promise<void>;
}

/**
 * Close a test's page and fail the test if the page ever tried to leave loopback or logged a
 * console error (a CSP violation shows up there). Every browser test's afterEach.
 */
export async function closeAndCheck(g: GuardedPage | null | undefined): Promise<void> {
  if (!g) return;
  const { blocked, consoleErrors } = g;
  await g.close();
  if (blocked.length) throw new Error(`browser requests off loopback: ${blocked.join(', ')}`);
  if (consoleErrors.length) throw new Error(`console errors (CSP violations included): ${consoleErrors.join(' | ')}`);
}

/** A fresh browser context (own cookies) with the loopback guard installed before anything loads. */
export async function newGuardedPage(browser: Browser, options: { javaScriptEnabled?: boolean } = {}): Promise<GuardedPage> {
  const context = await browser.newContext({ serviceWorkers: 'block', javaScriptEnabled: options.javaScriptEnabled ?? true });
  const blocked: string[] = [];
  const consoleErrors: string[] = [];
  const requests: Request[] = [];
  // Registered first, so it runs last: routes added later may modify a request and fall back to it.
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (!isLoopbackUrl(url)) {
      blocked.push(url);
      await route.abort('blockedbyclient');
      return;
    }
    await route.continue();
  });
  const page = await context.newPage();
  page.on('request', (r) => {
    requests.push(r);
    // Redirect hops bypass the router: record them here (the proxy layer stops the connection).
    if (!isLoopbackUrl(r.url()) && !blocked.includes(r.url())) blocked.push(r.url());
  });
  page.on('console', (m) => {
    // An HTTP error answer (a 401 from a wrong password, a 404 returnTo) is logged by Chromium too; that is not a page error.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of \d{3}\b/.test(m.text())) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  return {
    context,
    page,
    blocked,
    consoleErrors,
    requests,
    assertLoopbackOnly() {
      if (blocked.length) throw new Error(`the browser tried to leave loopback: ${blocked.join(', ')}`);
    },
    close: () => context.close(),
  };
}

export interface ServedGatehouse {
  t: TestGatehouse;
  /** http://127.0.0.1:<port> — also GATEHOUSE_BASE_URL and a trusted origin. */
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * A test Gatehouse (fresh database, captured mail, frozen clock) listening on 127.0.0.1 at a
 * free port, with GATEHOUSE_BASE_URL set to that real origin. The socket is bound first and the
 * app built once the port is known, so there is no port race. `http://localhost:3000` (the
 * in-process test helpers' Origin) stays trusted so t.request() still works for set-up.
 */
export async function startServedGatehouse(options: TestOptions = {}): Promise<ServedGatehouse> {
  let handler: ((req: globalThis.Request, env: unknown) => Response | Promise<Response>) | null = null;
  const { server, port } = await new Promise<{ server: ServerType; port: number }>((resolve) => {
    const s = serve(
      {
        fetch: (req, env) => (handler ? handler(req, env) : new Response('starting', { status: 503 })),
        port: 0,
        hostname: '127.0.0.1',
      },
      (info: AddressInfo) => resolve({ server: s, port: info.port }),
    );
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const extraOrigins = options.env?.GATEHOUSE_TRUSTED_ORIGINS ? `,${options.env.GATEHOUSE_TRUSTED_ORIGINS}` : '';
  const t = await createTestGatehouse({
    ...options,
    env: { ...options.env, GATEHOUSE_BASE_URL: baseUrl, GATEHOUSE_TRUSTED_ORIGINS: `http://localhost:3000${extraOrigins}` },
  });
  handler = (req, env) => t.app.fetch(req, env);
  return {
    t,
    baseUrl,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
      await t.destroy();
    },
  };
}

/**
 * Where the browser tests write their screenshots: `docs/screenshots/` when
 * GATEHOUSE_SCREENSHOTS=1 (`npm run screenshots` refreshes the README's pictures), else a
 * temporary directory, so an ordinary `npm test` still takes them but leaves the checkout clean.
 */
export function screenshotFile(name: string): string {
  const dir = process.env.GATEHOUSE_SCREENSHOTS === '1'
    ? new URL('../../docs/screenshots/', import.meta.url).pathname
    : join(tmpdir(), 'gatehouse-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
