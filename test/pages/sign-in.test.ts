/**
 * The hosted /sign-in page in real Chromium against a Gatehouse served on 127.0.0.1, with the
 * certified oidc-provider as the organization's IdP. Every browser request off loopback is
 * aborted and fails the test; a console error (e.g. a CSP violation) fails it too.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addMember, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, newGuardedPage, type GuardedPage } from '../helpers/browser.js';
import { browserSession, loginAtIdpAs, orgWithSso, startWorld, totpAt, type World } from './world.js';

const run = chromiumAvailable();
let world: World;
let owner: TestUser;
let g: GuardedPage;
let n = 0;

const url = (path: string) => `${world.served.baseUrl}${path}`;
const focusedId = () => g.page.evaluate(() => document.activeElement?.id ?? null);
const t = () => world.served.t;

describe.skipIf(!run)('hosted sign-in page (Chromium)', () => {
  beforeAll(async () => {
    world = await startWorld([
      { sub: 'alice-sub', email: 'alice@acme-sso.test', email_verified: true, name: 'Alice Acme' },
    ]);
    owner = await t().signUp('owner@acme-sso.test');
    await orgWithSso(world, owner, { name: 'Acme', slug: 'acme', domain: 'acme-sso.test' });
  });
  afterAll(async () => {
    await world?.close();
  });
  afterEach(() => closeAndCheck(g));

  /** A fresh guarded page that opened `path`, entered `email` and pressed Continue. */
  async function atPasswordStep(path: string, email: string): Promise<GuardedPage> {
    const page = await newGuardedPage(world.browser);
    await page.page.goto(url(path));
    await page.page.getByLabel('Email address').fill(email);
    await page.page.getByRole('button', { name: 'Continue' }).click();
    return page;
  }

  async function user(prefix: string, password = 'correct horse battery'): Promise<TestUser> {
    return t().signUp(`${prefix}-${++n}@plain.test`, password, `User ${n}`);
  }

  it('email → password → signed in: the cookie is set and the browser lands on returnTo', async () => {
    const u = await user('pw');
    g = await atPasswordStep('/sign-in?returnTo=%2Fwelcome%3Ftab%3D1', u.email);
    const password = g.page.getByLabel('Password', { exact: true });
    await expect.poll(() => password.isVisible()).toBe(true);
    expect(await focusedId()).toBe('password');
    expect(await g.page.getByLabel('Email address').getAttribute('readonly')).not.toBeNull();
    await password.fill(u.password);
    await Promise.all([g.page.waitForURL(url('/welcome?tab=1')), g.page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
    const s = await browserSession(world, g);
    expect(s?.user.email).toBe(u.email);
    expect(s?.session).toMatchObject({ authMethod: 'password', mfa: 'none' });
    const cookie = (await g.context.cookies(world.served.baseUrl)).find((c) => c.name === 'gatehouse_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    // The page called the JSON API with the browser's own Origin (CSRF check passed), never with the password in a URL.
    expect(g.requests.map((r) => r.url()).filter((x) => x.includes(u.password))).toEqual([]);
  });

  it('a wrong password shows the error in the alert region and moves focus to it', async () => {
    const u = await user('wrong');
    g = await atPasswordStep('/sign-in', u.email);
    await g.page.getByLabel('Password', { exact: true }).fill('not the password');
    await g.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const alert = g.page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('The email or password is incorrect.');
    expect(await alert.textContent()).toMatch(/^Error:/);
    expect(await focusedId()).toBe('error');
    expect(await g.page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await browserSession(world, g)).toBeNull();
    expect(g.page.url()).toBe(url('/sign-in'));
  });

  it('an email at a verified domain of an organization with SSO goes to its SSO and completes the real OIDC login', async () => {
    g = await newGuardedPage(world.browser);
    await loginAtIdpAs(world, g, 'alice-sub');
    const expected = '/api/auth/sso/acme/login?login_hint=alice%40acme-sso.test&returnTo=%2Fdashboard';
    // The first automatic redirect is answered 204 (a navigation to a 204 leaves the page as it is),
    // so the button the page shows can be read; then the user clicks it and the real login runs.
    const held: string[] = [];
    await g.context.route(`${world.served.baseUrl}/api/auth/sso/*/login*`, (route) => {
      held.push(route.request().url());
      return route.fulfill({ status: 204 });
    }, { times: 1 });
    await g.page.goto(url('/sign-in?returnTo=/dashboard'));
    await g.page.getByLabel('Email address').fill('alice@acme-sso.test');
    await g.page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => held.length).toBe(1);
    expect(held[0]).toBe(url(expected));
    const link = g.page.getByRole('link', { name: 'Continue with Acme SSO' });
    await expect.poll(() => link.isVisible()).toBe(true);
    expect(await link.getAttribute('href')).toBe(expected);
    expect(await focusedId()).toBe('sso-link');
    expect(await g.page.getByRole('status').textContent()).toContain("Taking you to Acme's sign-in page");
    await Promise.all([g.page.waitForURL((u) => u.origin === new URL(url('/')).origin && /^\/dashboard(\/|$)/.test(u.pathname), { timeout: 20_000 }), link.click()]);
    const navigations = g.requests.filter((r) => r.isNavigationRequest()).map((r) => new URL(r.url()));
    expect(navigations.some((u) => u.origin === world.idp.issuer && u.pathname === '/auth')).toBe(true);
    expect(world.idp.lastLoginHint()).toBe('alice@acme-sso.test');
    const s = await browserSession(world, g);
    expect(s?.user.email).toBe('alice@acme-sso.test');
    expect(s?.session.authMethod).toBe('sso');
  });

  it('SSO_REQUIRED on password sign-in shows "Your organization requires single sign-on" with a button to its SSO', async () => {
    const orgOwner = await user('strict-owner');
    const member = await user('strict-member');
    const orgId = await orgWithSso(world, orgOwner, { name: 'Strict', slug: 'strict', domain: null });
    await addMember(t(), orgOwner, orgId, member, 'member');
    const sec = await t().request('PUT', `/api/user/organizations/${orgId}/settings/security`, { as: orgOwner, body: { authRequired: 'sso' } });
    expect(sec.status).toBe(200);

    g = await atPasswordStep('/sign-in?returnTo=/app', member.email);
    await g.page.getByLabel('Password', { exact: true }).fill(member.password);
    await g.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const alert = g.page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('Your organization requires single sign-on.');
    expect(await focusedId()).toBe('error');
    const link = alert.getByRole('link', { name: 'Continue with single sign-on' });
    expect(await link.getAttribute('href')).toBe(`/api/auth/sso/strict/login?login_hint=${encodeURIComponent(member.email)}&returnTo=%2Fapp`);
    expect(await browserSession(world, g)).toBeNull();
  });

  it('MFA pending → the code step → a TOTP code → lands on returnTo with MFA complete', async () => {
    const u = await user('mfa');
    const enroll = await t().request('POST', '/api/auth/mfa/totp/enroll', { as: u });
    expect(enroll.status).toBe(200);
    const secret: string = enroll.body.data.secret;
    expect((await t().request('POST', '/api/auth/mfa/totp/confirm', { as: u, body: { code: await totpAt(world, secret) } })).status).toBe(200);
    t().clock.advance(90_000); // the enrollment code's step is used up

    g = await atPasswordStep('/sign-in?returnTo=/after-mfa', u.email);
    await g.page.getByLabel('Password', { exact: true }).fill(u.password);
    await g.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const code = g.page.getByLabel('6-digit code');
    await expect.poll(() => code.isVisible()).toBe(true);
    expect(await focusedId()).toBe('code');
    expect(await code.getAttribute('autocomplete')).toBe('one-time-code');
    expect((await browserSession(world, g))?.session.mfa).toBe('pending');

    const right = await totpAt(world, secret);
    const wrong = right === '000000' ? '111111' : '000000';
    await code.fill(wrong);
    await g.page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => g.page.getByRole('alert').textContent()).toContain('That code is not valid');
    expect(await focusedId()).toBe('error');

    await code.fill(right);
    await Promise.all([g.page.waitForURL(url('/after-mfa')), g.page.getByRole('button', { name: 'Verify' }).click()]);
    expect((await browserSession(world, g))?.session.mfa).toBe('complete');
  });

  it('MFA with "use a recovery code" instead of the authenticator', async () => {
    const u = await user('recovery');
    const { secret } = (await t().request('POST', '/api/auth/mfa/totp/enroll', { as: u })).body.data;
    const confirm = await t().request('POST', '/api/auth/mfa/totp/confirm', { as: u, body: { code: await totpAt(world, secret) } });
    const recoveryCodes: string[] = confirm.body.data.recoveryCodes;
    expect(recoveryCodes).toHaveLength(10);

    g = await atPasswordStep('/sign-in', u.email);
    await g.page.getByLabel('Password', { exact: true }).fill(u.password);
    await g.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const toggle = g.page.getByRole('button', { name: 'Use a recovery code instead' });
    await toggle.click();
    expect(await g.page.getByRole('button', { name: 'Use a code from your authenticator app' }).getAttribute('aria-expanded')).toBe('true');
    expect(await focusedId()).toBe('recovery-code');
    await g.page.getByLabel('Recovery code').fill(recoveryCodes[0]!);
    // The default returnTo is "/", the front door, which sends a signed-in browser on to its dashboard.
    await Promise.all([g.page.waitForURL((u) => /^\/dashboard(\/|$)/.test(u.pathname)), g.page.getByRole('button', { name: 'Verify' }).click()]);
    expect((await browserSession(world, g))?.session.mfa).toBe('complete');
  });

  it('"Email me a sign-in link" says to check email; the mailed link opens "Sign in as …", whose button signs the browser in', async () => {
    const u = await user('magic');
    g = await atPasswordStep('/sign-in?returnTo=/from-link', u.email);
    const before = t().mails.length;
    await g.page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    const status = g.page.getByRole('status');
    await expect.poll(() => status.textContent()).toContain('Check your email.');
    expect(await focusedId()).toBe('status');
    await t().services.emailLinks.idle(); // the mail is issued after the answer (no timing oracle)
    const mail = t().mails.slice(before).find((m) => m.to === u.email);
    const link = mail && /(http:\/\/127\.0\.0\.1:\d+\/api\/auth\/magic-link\/verify\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(link, 'magic link in the captured mail').toBeTruthy();
    await g.page.goto(link!);
    // Opening the link signs nobody in (mail scanners open links too): the page asks first.
    expect(await browserSession(world, g)).toBeNull();
    await expect.poll(() => g.page.getByRole('heading', { level: 1 }).textContent()).toBe('Sign in');
    expect(await g.page.locator('#magic-link-email').textContent()).toBe(u.email);
    await Promise.all([g.page.waitForURL(url('/from-link')), g.page.getByRole('button', { name: `Sign in as ${u.email}` }).click()]);
    const s = await browserSession(world, g);
    expect(s?.user.email).toBe(u.email);
    expect(s?.session.authMethod).toBe('magic_link');
    // The form's POST carried the page's real Origin (the page's same-origin referrer policy), not "null".
    const post = g.requests.find((r) => r.method() === 'POST' && r.url() === url('/api/auth/magic-link/verify'));
    expect(await post?.headerValue('origin')).toBe(world.served.baseUrl);
    // The link is spent: opening it again shows the "used or expired" page, and signs nobody else in.
    await g.page.goto(link!);
    expect(await g.page.getByRole('heading', { level: 1 }).textContent()).toBe('This link is used or expired');
  });

  it('a mail scanner that fetches the link neither spends it nor gets a session (Chromium, JavaScript off, then the recipient)', async () => {
    const u = await user('scanned');
    expect((await t().request('POST', '/api/auth/magic-link', { body: { email: u.email, returnTo: '/scanned' } })).status).toBe(200);
    await t().services.emailLinks.idle();
    const mail = t().mails.findLast((m) => m.to === u.email);
    const link = mail && /(http:\/\/127\.0\.0\.1:\d+\/api\/auth\/magic-link\/verify\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(link, 'magic link in the captured mail').toBeTruthy();
    // The scanner: its own browser, no JavaScript, opens the link twice.
    const scanner = await newGuardedPage(world.browser, { javaScriptEnabled: false });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await scanner.page.goto(link!);
        expect(res?.status()).toBe(200);
      }
      expect(await browserSession(world, scanner)).toBeNull();
    } finally {
      await closeAndCheck(scanner);
    }
    // The recipient: the link still works, once, with its returnTo.
    g = await newGuardedPage(world.browser);
    await g.page.goto(link!);
    await Promise.all([g.page.waitForURL(url('/scanned')), g.page.getByRole('button', { name: `Sign in as ${u.email}` }).click()]);
    expect((await browserSession(world, g))?.user.email).toBe(u.email);
  });

  it('"Forgot password?" asks for a reset email and says to check email', async () => {
    const u = await user('forgot');
    g = await atPasswordStep('/sign-in', u.email);
    const before = t().mails.length;
    await g.page.getByRole('button', { name: 'Forgot password?' }).click();
    await expect.poll(() => g.page.getByRole('status').textContent()).toContain('Check your email.');
    await t().services.emailLinks.idle(); // the mail is issued after the answer (no timing oracle)
    expect(t().mails.slice(before).some((m) => m.to === u.email && /reset-password\?token=/.test(m.text))).toBe(true);
  });

  it('RATE_LIMITED says how long to wait', async () => {
    const u = await user('limited');
    // Ten failures from the browser's own address (SPEC §12: failures from other addresses would
    // not lock the account for this one).
    for (let i = 0; i < 10; i++) {
      await t().request('POST', '/api/auth/sign-in/email', { body: { email: u.email, password: `wrong-${i}` }, ip: '127.0.0.1' });
    }
    g = await atPasswordStep('/sign-in', u.email);
    await g.page.getByLabel('Password', { exact: true }).fill(u.password);
    await g.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => g.page.getByRole('alert').textContent()).toMatch(/Too many attempts\. Try again in \d+ (minutes?|seconds?)\./);
    expect(await focusedId()).toBe('error');
    expect(await browserSession(world, g)).toBeNull();
  });

  it('keyboard only: the email and password steps complete with typing, Tab and Enter', async () => {
    const u = await user('keys');
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-in?returnTo=/kbd'));
    expect(await focusedId()).toBe('email'); // autofocus
    await g.page.keyboard.type(u.email);
    await g.page.keyboard.press('Tab');
    expect(await focusedId()).toBe('continue');
    await g.page.keyboard.press('Enter');
    await expect.poll(focusedId).toBe('password');
    await g.page.keyboard.type(u.password);
    await Promise.all([g.page.waitForURL(url('/kbd')), g.page.keyboard.press('Enter')]);
    expect((await browserSession(world, g))?.user.email).toBe(u.email);
  });

  it('accessibility basics: every input has a label and an autocomplete purpose, the regions are live, nothing depends on colour', async () => {
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-in'));
    const report = await g.page.evaluate(() => {
      const inputs = [...document.querySelectorAll('input:not([type=hidden])')] as HTMLInputElement[];
      return {
        lang: document.documentElement.lang,
        h1: document.querySelectorAll('h1').length,
        unlabeled: inputs.filter((i) => !i.labels?.length && !i.getAttribute('aria-label')).map((i) => i.id),
        autocomplete: Object.fromEntries(inputs.map((i) => [i.id, i.getAttribute('autocomplete')])),
        error: { role: document.getElementById('error')?.getAttribute('role'), live: document.getElementById('error')?.getAttribute('aria-live'), tabindex: document.getElementById('error')?.getAttribute('tabindex') },
        status: { role: document.getElementById('status')?.getAttribute('role'), live: document.getElementById('status')?.getAttribute('aria-live') },
        unnamedButtons: [...document.querySelectorAll('button')].filter((b) => !b.textContent?.trim()).length,
        fieldsetsWithoutLegend: [...document.querySelectorAll('fieldset')].filter((f) => !f.querySelector(':scope > legend')).length,
        inlineScripts: [...document.querySelectorAll('script')].filter((s) => !s.src).length,
        inlineStyles: document.querySelectorAll('style,[style]').length,
      };
    });
    expect(report).toEqual({
      lang: 'en',
      h1: 1,
      unlabeled: [],
      autocomplete: { email: 'username', password: 'current-password', code: 'one-time-code', 'recovery-code': 'one-time-code' },
      error: { role: 'alert', live: 'assertive', tabindex: '-1' },
      status: { role: 'status', live: 'polite' },
      unnamedButtons: 0,
      fieldsetsWithoutLegend: 0,
      inlineScripts: 0,
      inlineStyles: 0,
    });
    // An error says "Error:" in words, not only in red.
    await g.page.getByRole('button', { name: 'Continue' }).click(); // empty email: the browser's own validation
    expect(await g.page.evaluate(() => (document.getElementById('email') as HTMLInputElement).validity.valueMissing)).toBe(true);
  });

  it('reflected script injection is inert: Chromium enforces the CSP (an injected inline script does not run)', async () => {
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-in'));
    const ran = await g.page.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = 'window.__injected = true';
      document.body.append(s);
      await new Promise((r) => setTimeout(r, 50));
      return (window as unknown as { __injected?: boolean }).__injected === true;
    });
    expect(ran).toBe(false);
    expect(g.consoleErrors.join('\n')).toMatch(/Content Security Policy/);
    g.consoleErrors.length = 0; // the violation was the point of this test
  });

  it('an error the server rendered (a malformed email in the URL) gets the focus', async () => {
    g = await newGuardedPage(world.browser);
    const res = await g.page.goto(url('/sign-in?email=not-an-email'));
    expect(res?.status()).toBe(400);
    await expect.poll(focusedId).toBe('error');
    expect(await g.page.getByRole('alert').textContent()).toContain('Enter a valid email address');
  });

  it('without JavaScript the email step still works: the server discovers SSO and renders a plain link to it', async () => {
    g = await newGuardedPage(world.browser, { javaScriptEnabled: false });
    await g.page.goto(url('/sign-in?returnTo=/nojs'));
    await g.page.getByLabel('Email address').fill('alice@acme-sso.test');
    await Promise.all([g.page.waitForURL(/\/sign-in\?/), g.page.getByLabel('Email address').press('Enter')]);
    const link = g.page.getByRole('link', { name: 'Continue with Acme SSO' });
    expect(await link.isVisible()).toBe(true);
    expect(await link.getAttribute('href')).toBe('/api/auth/sso/acme/login?login_hint=alice%40acme-sso.test&returnTo=%2Fnojs');
    // A password account gets the password step and a note that it needs JavaScript (no password ever goes in a URL).
    const u = await user('nojs');
    await g.page.goto(url(`/sign-in?email=${encodeURIComponent(u.email)}`));
    expect(await g.page.getByLabel('Password', { exact: true }).isVisible()).toBe(true);
    expect(await g.page.getByLabel('Password', { exact: true }).getAttribute('name')).toBeNull();
    expect(await g.page.textContent('#password-step')).toContain('needs JavaScript');
  });
});
