/** The hosted /sign-up page in real Chromium against a Gatehouse served on 127.0.0.1. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, newGuardedPage, type GuardedPage } from '../helpers/browser.js';
import { browserSession, orgWithSso, startWorld, type World } from './world.js';

const run = chromiumAvailable();
let world: World;
let owner: TestUser;
let g: GuardedPage;

const url = (path: string) => `${world.served.baseUrl}${path}`;
const focusedId = () => g.page.evaluate(() => document.activeElement?.id ?? null);
const t = () => world.served.t;

describe.skipIf(!run)('hosted sign-up page (Chromium)', () => {
  beforeAll(async () => {
    world = await startWorld();
    owner = await t().signUp('owner@strict-signup.test');
    await orgWithSso(world, owner, { name: 'Strict Corp', slug: 'strict-corp', domain: 'strict-signup.test', requireSso: true });
  });
  afterAll(async () => {
    await world?.close();
  });
  afterEach(() => closeAndCheck(g));

  async function fill(email: string, name: string, password: string) {
    await g.page.getByLabel('Email address').fill(email);
    await g.page.getByLabel('Full name').fill(name);
    await g.page.getByLabel('Password', { exact: true }).fill(password);
  }

  it('email, name and password create the account, sign the browser in and land on returnTo', async () => {
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-up?returnTo=/onboarding'));
    expect(await focusedId()).toBe('email');
    const report = await g.page.evaluate(() => {
      const inputs = [...document.querySelectorAll('input:not([type=hidden])')] as HTMLInputElement[];
      return {
        unlabeled: inputs.filter((i) => !i.labels?.length).map((i) => i.id),
        autocomplete: Object.fromEntries(inputs.map((i) => [i.id, i.getAttribute('autocomplete')])),
        alert: document.getElementById('error')?.getAttribute('role'),
      };
    });
    expect(report).toEqual({ unlabeled: [], autocomplete: { email: 'username', name: 'name', 'new-password': 'new-password' }, alert: 'alert' });
    await fill('new.person@plain.test', 'New Person', 'a long new password');
    await Promise.all([g.page.waitForURL(url('/onboarding')), g.page.getByRole('button', { name: 'Create account' }).click()]);
    const s = await browserSession(world, g);
    expect(s?.user).toMatchObject({ email: 'new.person@plain.test', name: 'New Person' });
    expect(s?.session.authMethod).toBe('password');
  });

  it('an existing email says "an account exists" with a way to sign in instead, and focus moves to the message', async () => {
    const existing = await t().signUp('taken@plain.test');
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-up?returnTo=/app'));
    await fill(existing.email, 'Someone Else', 'another long password');
    await g.page.getByRole('button', { name: 'Create account' }).click();
    const alert = g.page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('An account with this email already exists.');
    expect(await focusedId()).toBe('error');
    expect(await g.page.getByLabel('Email address').getAttribute('aria-invalid')).toBe('true');
    const signIn = alert.getByRole('link', { name: 'Sign in instead' });
    expect(await signIn.getAttribute('href')).toBe('/sign-in?email=taken%40plain.test&returnTo=%2Fapp');
    await Promise.all([g.page.waitForURL(/\/sign-in\?/), signIn.click()]);
    // The sign-in page picks up the email and goes straight to the password step.
    await expect.poll(focusedId).toBe('password');
    expect(await g.page.getByLabel('Email address').inputValue()).toBe('taken@plain.test');
    expect(await browserSession(world, g)).toBeNull();
  });

  it('an email at a domain whose organization requires SSO gets the SSO button instead of an account', async () => {
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-up?returnTo=/app'));
    await fill('newcomer@strict-signup.test', 'Newcomer', 'a long enough password');
    await g.page.getByRole('button', { name: 'Create account' }).click();
    const alert = g.page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('Your organization requires single sign-on.');
    expect(await focusedId()).toBe('error');
    expect(await alert.getByRole('link', { name: 'Continue with single sign-on' }).getAttribute('href'))
      .toBe('/api/auth/sso/strict-corp/login?login_hint=newcomer%40strict-signup.test&returnTo=%2Fapp');
    expect(await t().deps.db.selectFrom('users').select('id').where('email', '=', 'newcomer@strict-signup.test').executeTakeFirst()).toBeUndefined();
  });

  it('a too-short password is stopped before any request, by the browser\'s own validation', async () => {
    g = await newGuardedPage(world.browser);
    await g.page.goto(url('/sign-up'));
    await fill('short@plain.test', '', 'short');
    await g.page.getByRole('button', { name: 'Create account' }).click();
    expect(await g.page.evaluate(() => (document.getElementById('new-password') as HTMLInputElement).validity.tooShort)).toBe(true);
    expect(g.requests.filter((r) => r.method() === 'POST')).toEqual([]);
  });
});
