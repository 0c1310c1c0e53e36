/**
 * The hosted invitation page (/invitations/{token}) over HTTP and in real Chromium, and the older
 * pages (SSO error, emailed-link problems, /reset-password) on the shared page frame.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { chromiumAvailable, closeAndCheck, newGuardedPage, type GuardedPage } from '../helpers/browser.js';
import { PAGE_CSP } from '../../src/pages/layout.js';
import { DAY } from '../../src/clock.js';
import { browserSession, startWorld, type World } from './world.js';

const EVIL_ORG = '<script>x</script>';
const INLINE_CODE = /<style|\sstyle=|\son[a-z]+=|<script(?![^>]*\bsrc=)[^>]*>/i;

/** The page link in the invitation mail to `email` (the last one), and its token. */
function invitationLink(mails: { to: string; text: string }[], email: string) {
  const mail = mails.findLast((m) => m.to === email);
  const m = mail && /^(https?:\/\/\S+)\/invitations\/([A-Za-z0-9_-]+)$/m.exec(mail.text);
  if (!m) throw new Error(`no invitation link in the mail to ${email}`);
  return { base: m[1]!, token: m[2]!, text: mail.text };
}

async function invite(t: TestGatehouse, owner: TestUser, orgId: string, email: string, role: 'owner' | 'admin' | 'member' = 'member') {
  const res = await t.request('POST', `/api/user/organizations/${orgId}/invitations`, { as: owner, body: { email, role } });
  if (res.status !== 201) throw new Error(`invite failed: ${res.status} ${res.text}`);
  return { id: res.body.data.id as string, ...invitationLink(t.mails, email) };
}

describe('invitation page over HTTP', () => {
  let t: TestGatehouse;
  let owner: TestUser;
  let orgId: string;
  let n = 0;
  const invitee = () => `o'brien-${++n}@invitee.test`;

  beforeAll(async () => {
    t = await createTestGatehouse();
    owner = await t.signUp('owner@host.test');
    orgId = await createOrg(t, owner, EVIL_ORG, 'evil-name');
  });
  afterAll(async () => {
    await t.destroy();
  });

  const page = (path: string, cookie?: string) => t.request('GET', path, { headers: { accept: 'text/html' }, ...(cookie ? { as: { cookie } } : {}) });

  it('the invitation mail links to the hosted page on the base URL (the JSON accept API is still named for API clients)', async () => {
    const email = invitee();
    const inv = await invite(t, owner, orgId, email);
    expect(inv.base).toBe(BASE_URL);
    expect(inv.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(inv.text).toContain(`${BASE_URL}/invitations/${inv.token}\n`);
    expect(inv.text).toContain('valid for 7 days');
  });

  it('signed out: 200 with the strict CSP, no inline code, never cached; names the organization and email (escaped) and links to sign-in / sign-up coming back here', async () => {
    const email = invitee();
    const { token } = await invite(t, owner, orgId, email);
    const res = await page(`/invitations/${token}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).not.toMatch(INLINE_CODE);
    expect(res.text).toContain('<link rel="stylesheet" href="/assets/gatehouse.css">');
    // Stored-XSS attempt through the organization name and an apostrophe in the email: both arrive as text.
    expect(res.text).not.toContain(EVIL_ORG);
    expect(res.text).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(res.text).not.toContain(email);
    expect(res.text).toContain(email.replace("'", '&#39;'));
    expect(res.text).toMatch(/You're invited to <strong>&lt;script&gt;x&lt;\/script&gt;<\/strong> — sign in or create an account with <strong>o&#39;brien-\d+@invitee\.test<\/strong> to accept\./);
    expect(res.text).not.toContain('Accept invitation');

    const q = new URLSearchParams({ email, returnTo: `/invitations/${token}` }).toString();
    expect(q).toContain('o%27brien');
    expect(res.text).toContain(`href="/sign-in?${q.replace('&', '&amp;')}"`);
    expect(res.text).toContain(`href="/sign-up?${q.replace('&', '&amp;')}"`);
    // The returnTo passes the sign-in page's returnTo check (a 400 page otherwise), and sign-in discovers the email.
    const signIn = await page(`/sign-in?${q}`);
    expect(signIn.status).toBe(200);
    expect(signIn.text).toContain(`data-return-to="/invitations/${token}"`);
    const signUp = await page(`/sign-up?${q}`);
    expect(signUp.status).toBe(200);
    expect(signUp.text).toContain(`data-return-to="/invitations/${token}"`);
  });

  it('signed in as the invited email: an "Accept invitation" button driven by /assets/invitation.js', async () => {
    const email = invitee();
    const u = await t.signUp(email);
    const { token } = await invite(t, owner, orgId, email, 'admin');
    const res = await page(`/invitations/${token}`, u.cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.text).not.toMatch(INLINE_CODE);
    expect(res.text).toContain('<script type="module" src="/assets/invitation.js"></script>');
    expect(res.text).toContain(`<form id="accept-form" data-token="${token}">`);
    expect(res.text).toContain('Accept invitation');
    expect(res.text).toContain('as admin');
    expect(res.text).not.toContain(EVIL_ORG);

    const script = await t.request('GET', '/assets/invitation.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(script.text).toContain('/api/user/invitations/');
    expect(script.text).not.toContain('innerHTML');
  });

  it('signed in as another account: says whose invitation it is, offers sign-out, no Accept button', async () => {
    const email = invitee();
    const { token } = await invite(t, owner, orgId, email);
    const other = await t.signUp(`someone-else-${n}@invitee.test`);
    const res = await page(`/invitations/${token}`, other.cookie);
    expect(res.status).toBe(200);
    expect(res.text).toContain(`You're signed in as <strong>${other.email}</strong>, but this invitation was sent to`);
    expect(res.text).toContain('id="sign-out"');
    expect(res.text).not.toContain('Accept invitation');
    // The page changed nothing: the invitation is still open for its addressee.
    const u = await t.signUp(email);
    expect((await t.request('POST', `/api/user/invitations/${token}/accept`, { as: u })).status).toBe(200);
  });

  it('token guessing: an unknown or malformed token is one identical 404 page that reveals nothing', async () => {
    const { token } = await invite(t, owner, orgId, invitee());
    const unknown = await page(`/invitations/${'A'.repeat(43)}`);
    const malformed = await page('/invitations/not.a.token');
    const nearMiss = await page(`/invitations/${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`);
    for (const res of [unknown, malformed, nearMiss]) {
      expect(res.status).toBe(404);
      expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
      expect(res.text).toContain('Invitation not found');
      expect(res.text).not.toContain('&lt;script&gt;');
      expect(res.text).not.toContain('invitee.test');
      expect(res.text).toBe(unknown.text);
    }
  });

  it('used, revoked or expired invitations are a 410 page without the organization or email', async () => {
    const usedEmail = invitee();
    const used = await invite(t, owner, orgId, usedEmail);
    const u = await t.signUp(usedEmail);
    expect((await t.request('POST', `/api/user/invitations/${used.token}/accept`, { as: u })).status).toBe(200);

    const revoked = await invite(t, owner, orgId, invitee());
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/invitations/${revoked.id}`, { as: owner })).status).toBe(200);

    // Expired: its own Gatehouse, so moving the clock leaves the other tests alone.
    const t2 = await createTestGatehouse();
    try {
      const owner2 = await t2.signUp('owner2@host.test');
      const org2 = await createOrg(t2, owner2, 'Later Org', 'later-org');
      const late = await invite(t2, owner2, org2, 'late@invitee.test');
      expect((await t2.request('GET', `/invitations/${late.token}`)).status).toBe(200);
      t2.clock.advance(7 * DAY + 1000);
      const expired = await t2.request('GET', `/invitations/${late.token}`);
      expect(expired.status).toBe(410);
      expect(expired.text).toContain('This invitation has expired, was already used or was withdrawn.');
      expect(expired.text).not.toContain('Later Org');
      expect(expired.text).not.toContain('late@invitee.test');
    } finally {
      await t2.destroy();
    }

    for (const token of [used.token, revoked.token]) {
      const res = await page(`/invitations/${token}`, u.cookie);
      expect(res.status).toBe(410);
      expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
      expect(res.text).toContain('This invitation can no longer be used');
      expect(res.text).not.toContain('&lt;script&gt;');
      expect(res.text).not.toContain('invitee.test');
      expect(res.text).not.toContain('Accept invitation');
    }
  });
});

describe('older pages on the shared page frame', () => {
  let t: TestGatehouse;
  beforeAll(async () => {
    t = await createTestGatehouse();
  });
  afterAll(async () => {
    await t.destroy();
  });
  const html = (path: string) => t.request('GET', path, { headers: { accept: 'text/html' } });

  function expectSharedFrame(text: string) {
    expect(text).toContain('<link rel="stylesheet" href="/assets/gatehouse.css">');
    expect(text).not.toMatch(INLINE_CODE);
    expect(text).toContain('<div id="error" class="error" role="alert"');
  }

  it('an emailed link that is used or expired: strict CSP header, shared stylesheet, no inline style', async () => {
    const res = await html('/api/auth/magic-link/verify?token=nope');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expectSharedFrame(res.text);
    expect(res.text).toContain('This link is invalid, already used or expired.');
  });

  it('/reset-password: strict CSP header, shared stylesheet, one alert and one status region', async () => {
    const res = await html('/reset-password?token=abc');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expectSharedFrame(res.text);
    expect(res.text.match(/id="error"/g)).toHaveLength(1);
    expect(res.text.match(/id="status"/g)).toHaveLength(1);
    expect(res.text).toContain('<script type="module" src="/assets/reset-password.js"></script>');
  });

  it('the SSO error page: shared stylesheet, no inline style, and the strict policy header', async () => {
    const res = await html('/api/auth/sso/callback?state=nope&code=x');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expectSharedFrame(res.text);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).toContain(`request <code>${res.headers.get('x-request-id')}</code>`);
  });
});

const run = chromiumAvailable();

describe.skipIf(!run)('invitation page (Chromium)', () => {
  let world: World;
  let g: GuardedPage | null = null;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await world?.close();
  });
  afterEach(async () => {
    const page = g;
    g = null;
    await closeAndCheck(page);
  });

  it('the invited user opens the mailed link, signs in through the page, comes back, clicks Accept and is a member', async () => {
    const { t, baseUrl } = world.served;
    const owner = await t.signUp('owner@browser-org.test');
    const orgId = await createOrg(t, owner, 'Browser Org', 'browser-org');
    const u = await t.signUp('invitee@elsewhere.test', 'invitee password 1');
    await invite(t, owner, orgId, u.email);
    const link = invitationLink(t.mails, u.email);
    expect(link.base).toBe(baseUrl);
    const here = `${baseUrl}/invitations/${link.token}`;

    g = await newGuardedPage(world.browser);
    await g.page.goto(here);
    expect(await g.page.locator('#invitation-text').textContent()).toBe("You're invited to Browser Org — sign in or create an account with invitee@elsewhere.test to accept.");
    await g.page.getByRole('link', { name: 'Sign in' }).click();
    const password = g.page.getByLabel('Password', { exact: true });
    await expect.poll(() => password.isVisible()).toBe(true);
    expect(await g.page.getByLabel('Email address').inputValue()).toBe(u.email);
    await password.fill(u.password);
    await Promise.all([g.page.waitForURL(here), g.page.getByRole('button', { name: 'Sign in', exact: true }).click()]);

    const accept = g.page.getByRole('button', { name: 'Accept invitation' });
    await expect.poll(() => accept.isVisible()).toBe(true);
    // Accepted: on to "/", the front door, which sends a signed-in browser to its dashboard.
    await Promise.all([g.page.waitForURL((u) => u.origin === baseUrl && /^\/dashboard(\/|$)/.test(u.pathname)), accept.click()]);

    const s = await browserSession(world, g);
    expect(s?.user.email).toBe(u.email);
    const me = await t.request('GET', '/api/auth/session', { as: u });
    expect(me.body.data.memberships).toEqual(expect.arrayContaining([expect.objectContaining({ organizationId: orgId, role: 'member' })]));
    // The accept went through the JSON API from the page (same origin), and the link is now used.
    expect(g.requests.some((r) => r.method() === 'POST' && r.url() === `${baseUrl}/api/user/invitations/${link.token}/accept`)).toBe(true);
    expect((await t.request('GET', `/invitations/${link.token}`)).status).toBe(410);
  });

  it('signed in as another account: Sign out ends that session and opens sign-in for the invited email, coming back to the invitation', async () => {
    const { t, baseUrl } = world.served;
    const owner = await t.signUp('owner2@browser-org.test');
    const orgId = await createOrg(t, owner, 'Second Org', 'second-org');
    await invite(t, owner, orgId, 'right@elsewhere.test');
    const { token } = invitationLink(t.mails, 'right@elsewhere.test');
    const wrong = await t.signUp('wrong@elsewhere.test');

    g = await newGuardedPage(world.browser);
    await g.context.addCookies([{ name: 'gatehouse_session', value: wrong.cookie, url: baseUrl }]);
    await g.page.goto(`${baseUrl}/invitations/${token}`);
    expect(await g.page.locator('#wrong-account').textContent()).toContain("You're signed in as wrong@elsewhere.test, but this invitation was sent to right@elsewhere.test.");
    expect(await g.page.getByRole('button', { name: 'Accept invitation' }).count()).toBe(0);
    await Promise.all([g.page.waitForURL(/\/sign-in\?/), g.page.getByRole('button', { name: 'Sign out' }).click()]);
    const landed = new URL(g.page.url());
    expect(landed.searchParams.get('email')).toBe('right@elsewhere.test');
    expect(landed.searchParams.get('returnTo')).toBe(`/invitations/${token}`);
    expect(await browserSession(world, g)).toBeNull();
    expect((await t.request('GET', '/api/auth/session', { as: wrong })).status).toBe(401);
  });
});
