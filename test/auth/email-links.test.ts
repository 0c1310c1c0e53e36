import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/clock.js';
import { sha256 } from '../../src/crypto/tokens.js';
import { newId } from '../../src/ids.js';
import type { AuthRequired } from '../../src/db/schema.js';
import { BASE_URL } from '../helpers/app.js';
import { createSmtpTestGatehouse, linkIn, pathOf, startSmtpCatcher, tokenOf, type ReceivedMail, type SmtpCatcher, type SmtpTestGatehouse } from '../helpers/smtp.js';

const MAGIC = `${BASE_URL}/api/auth/magic-link/verify?token=`;
const RESET = `${BASE_URL}/reset-password?token=`;
const SECOND_MS = 1000;
const JSON_ACCEPT = { accept: 'application/json' };
const HTML_ACCEPT = { accept: 'text/html,application/xhtml+xml' };

let smtp: SmtpCatcher;
let t: SmtpTestGatehouse;
let ipN = 0;
/** A fresh client address per request, so the per-IP limits stay out of the way unless a test wants them. */
const ip = () => `10.0.${Math.floor(++ipN / 250)}.${ipN % 250}`;

beforeAll(async () => {
  smtp = await startSmtpCatcher();
});
afterAll(async () => {
  await smtp.close();
});
beforeEach(async () => {
  smtp.mails.length = 0;
  t = await createSmtpTestGatehouse(smtp);
});
afterEach(async () => {
  await t.destroy();
});

const mailTo = (address: string, subject: RegExp) => smtp.waitFor((m) => m.to.includes(address.toLowerCase()) && subject.test(m.subject));

async function requestMagicLink(email: string, returnTo?: string) {
  const res = await t.request('POST', '/api/auth/magic-link', { body: { email, ...(returnTo !== undefined ? { returnTo } : {}) }, ip: ip() });
  return res;
}

async function magicLinkFor(email: string, returnTo?: string): Promise<{ mail: ReceivedMail; link: string }> {
  const res = await requestMagicLink(email, returnTo);
  expect(res.status, res.text).toBe(200);
  const mail = await mailTo(email, /sign-in link/);
  return { mail, link: linkIn(mail, MAGIC) };
}

const MAGIC_PATH = '/api/auth/magic-link/verify';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', ...HTML_ACCEPT };

/** What the confirmation page's form sends: the token as a form POST, from Gatehouse's own origin. */
function confirmLink(link: string, opts: { origin?: string | null; as?: { cookie: string } } = {}) {
  return t.request('POST', MAGIC_PATH, { rawBody: new URLSearchParams({ token: tokenOf(link) }).toString(), headers: FORM, ...opts });
}

/** A JSON API client using the link: POST {token}. */
function postToken(token: string, opts: { origin?: string | null } = {}) {
  return t.request('POST', MAGIC_PATH, { body: { token }, headers: JSON_ACCEPT, ...opts });
}

async function tokenRows(purpose: string) {
  return t.deps.db.selectFrom('one_time_tokens').selectAll().where('purpose', '=', purpose as 'magic_link').execute();
}

/** An organization (with an owner) created directly in the database; returns its id and slug. */
async function orgWith(opts: { slug: string; authRequired?: AuthRequired; domain?: { name: string; autoJoin?: boolean; requireApproval?: boolean; role?: 'member' | 'admin' } }) {
  const now = t.clock.now().toISOString();
  const id = newId();
  await t.deps.db.insertInto('organizations').values({ id, name: `Org ${opts.slug}`, slug: opts.slug, auth_required: opts.authRequired ?? 'any', require_mfa: 0, created_at: now, updated_at: now }).execute();
  if (opts.domain) {
    await t.deps.db.insertInto('domains').values({
      id: newId(), organization_id: id, domain: opts.domain.name, status: 'verified', verification_token: `tok-${opts.slug}`, verified_at: now, last_checked_at: now,
      auto_join: opts.domain.autoJoin ? 1 : 0, require_approval: opts.domain.requireApproval ? 1 : 0, join_role: opts.domain.role ?? 'member', created_at: now, updated_at: now,
    }).execute();
  }
  return { id, slug: opts.slug };
}

async function addMembership(orgId: string, userId: string) {
  const now = t.clock.now().toISOString();
  await t.deps.db.insertInto('members').values({ organization_id: orgId, user_id: userId, role: 'member', created_at: now, updated_at: now }).execute();
}

async function verified(userId: string) {
  await t.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', userId).execute();
  t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
}

async function userRow(email: string) {
  return t.deps.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

describe('magic link sign-in (mail over real SMTP)', () => {
  it('creates an unknown user with a verified email, signs in with a magic_link session and 302s to /', async () => {
    const { mail, link } = await magicLinkFor('New.Person@Example.com');
    expect(mail.to).toEqual(['new.person@example.com']);
    expect(mail.headers.from).toContain('no-reply@gatehouse.test');
    expect(mail.text).toMatch(/Hello/);
    expect(mail.text).toMatch(/expires in 15 minutes/);
    expect(mail.text).toMatch(/didn't ask for this/);
    expect(await userRow('new.person@example.com')).toBeUndefined(); // not before the link is used

    const page = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT });
    expect(page.status).toBe(200);
    expect(page.text).toContain('Sign in as <strong id="magic-link-email">new.person@example.com</strong>');
    expect(page.cookie).toBeNull();
    const res = await confirmLink(link);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    expect(res.cookie).toMatch(/^gs_/);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.status).toBe(200);
    expect(session.body.data.user).toMatchObject({ email: 'new.person@example.com', emailVerified: true });
    expect(session.body.data.session).toMatchObject({ authMethod: 'magic_link', mfa: 'none' });
    const row = await userRow('new.person@example.com');
    expect(row?.password_hash).toBeNull();
  });

  it('a mail scanner that fetches the link neither spends it nor gets a session', async () => {
    const { link } = await magicLinkFor('scanned@example.com', '/after-scan');
    // A link-checking scanner fetches the mailed URL (twice, as some do), as a browser and as a bot.
    const first = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT });
    const second = await t.request('GET', pathOf(link), { headers: { accept: '*/*' } });
    const json = await t.request('GET', pathOf(link), { headers: JSON_ACCEPT });
    for (const res of [first, second, json]) {
      expect(res.status).toBe(200);
      expect(res.cookie).toBeNull();
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect(json.body.data).toMatchObject({ email: 'scanned@example.com' });
    expect(await userRow('scanned@example.com')).toBeUndefined(); // nothing created by a GET
    const [row] = await tokenRows('magic_link');
    expect(row!.used_at).toBeNull();
    expect(await t.deps.db.selectFrom('sessions').select('id').execute()).toEqual([]);
    // The recipient then presses "Sign in": the link works, once, and keeps its returnTo.
    const res = await confirmLink(link);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/after-scan');
    expect(res.cookie).toMatch(/^gs_/);
    expect((await confirmLink(link)).status).toBe(400);
  });

  it('the "Sign in as …" page: strict CSP, no script, never cached, the address escaped, a form that posts the token to the API', async () => {
    const { link } = await magicLinkFor("o'brien+tag@example.com");
    const page = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.text).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
    expect(page.text).toContain('Sign in as o&#39;brien+tag@example.com');
    expect(page.text).toContain('<form id="magic-link-form" method="post" action="/api/auth/magic-link/verify">');
    expect(page.text).toContain(`<input type="hidden" name="token" value="${tokenOf(link)}">`);
    // Same-origin referrer policy: the form's POST carries the page's real Origin (not "null").
    expect(page.text).toContain('<meta name="referrer" content="same-origin">');
  });

  it('login CSRF: a POST of a link from a foreign or opaque Origin is refused and does not spend it', async () => {
    const { link } = await magicLinkFor('csrf@example.com');
    for (const origin of ['https://evil.example', 'null']) {
      const form = await confirmLink(link, { origin });
      expect(form.status, origin).toBe(403);
      expect(form.cookie).toBeNull();
      const api = await postToken(tokenOf(link), { origin });
      expect(api.status, origin).toBe(403);
      expect(api.body.code).toBe('CSRF_REJECTED');
      expect(api.cookie).toBeNull();
    }
    // With a session of another account in the browser, a foreign Origin is refused as well.
    const other = await t.signUp('other-account@example.com');
    expect((await confirmLink(link, { origin: 'https://evil.example', as: other })).status).toBe(403);
    expect((await tokenRows('magic_link'))[0]!.used_at).toBeNull();
    expect(await userRow('csrf@example.com')).toBeUndefined();
    // From Gatehouse's own origin it still works (and an API client without an Origin may use it too).
    const ok = await postToken(tokenOf(link), { origin: null });
    expect(ok.status).toBe(200);
    expect(ok.body.data.user).toMatchObject({ email: 'csrf@example.com', emailVerified: true });
    expect(ok.body.data.session).toMatchObject({ authMethod: 'magic_link' });
    expect(ok.cookie).toMatch(/^gs_/);
  });

  it('stores only the SHA-256 of a 256-bit single-use token, with a 15-minute expiry', async () => {
    const { link } = await magicLinkFor('hash@example.com', '/after');
    const token = tokenOf(link);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [row] = await tokenRows('magic_link');
    expect(row!.token_hash).toBe(sha256(token));
    expect(JSON.stringify(row)).not.toContain(token);
    expect(Date.parse(row!.expires_at) - t.clock.now().getTime()).toBe(15 * MINUTE);
    expect(JSON.parse(row!.data!)).toEqual({ returnTo: '/after' });
  });

  it('signs in an existing verified user into the same account, keeping password and sessions', async () => {
    const u = await t.signUp('known@example.com', 'known password 1');
    await t.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', u.id).execute();
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    const { link } = await magicLinkFor('known@example.com');
    const res = await confirmLink(link);
    expect(res.status).toBe(303);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.user.id).toBe(u.id);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(200);
    const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'known@example.com', password: 'known password 1' }, ip: ip() });
    expect(signIn.status).toBe(200);
  });

  it('magic link on an account registered before the address was proven clears everything set up on it (pre-account-takeover)', async () => {
    // An attacker registers the victim's address with a password of their own (never verified),
    // mints an API key and enrolls a TOTP factor of their own.
    const attacker = await t.signUp('victim@example.com', 'attacker password');
    const key = await t.request('POST', '/api/user/api-keys', { as: attacker, body: { name: 'kept for later' } });
    expect(key.status).toBe(201);
    const now = t.clock.now().toISOString();
    await t.deps.db.insertInto('mfa_factors').values({ id: newId(), user_id: attacker.id, type: 'totp', secret_enc: 'sealed', confirmed_at: now, last_used_step: null, created_at: now }).execute();
    const { link } = await magicLinkFor('victim@example.com');
    const res = await confirmLink(link);
    expect(res.status).toBe(303);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.user).toMatchObject({ id: attacker.id, emailVerified: true });
    expect((await t.request('GET', '/api/auth/session', { as: attacker })).status).toBe(401);
    const again = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'victim@example.com', password: 'attacker password' }, ip: ip() });
    expect(again.status).toBe(401);
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'user.email_verified').execute();
    expect(JSON.parse(audit[0]!.metadata!)).toEqual({ method: 'magic_link', clearedUnverifiedLogin: true, sessionsRevoked: 1, apiKeysRevoked: 1, factorsRemoved: 1, identitiesRemoved: 0, membershipsRemoved: 0 });
    // The attacker's key no longer works, and the owner's session is not held at a second step the attacker controls.
    expect((await t.request('GET', '/api/user/me', { apiKey: key.body.data.key })).status).toBe(401);
    expect(session.body.data.session.mfa).toBe('none');
  });

  it('magic link cannot be used twice: a replayed POST is refused, and the link then shows "used or expired"', async () => {
    const { link } = await magicLinkFor('twice@example.com');
    expect((await confirmLink(link)).status).toBe(303);
    const replay = await confirmLink(link);
    expect(replay.status).toBe(400);
    expect(replay.text).toMatch(/used or expired/);
    expect(replay.cookie).toBeNull();
    const replayApi = await postToken(tokenOf(link));
    expect(replayApi.status).toBe(400);
    expect(replayApi.body).toMatchObject({ success: false, code: 'INVALID_TOKEN' });
    expect(replayApi.cookie).toBeNull();
    const browser = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT });
    expect(browser.status).toBe(400);
    expect(browser.headers.get('content-type')).toMatch(/text\/html/);
    expect(browser.text).toMatch(/used or expired/);
    expect(browser.text).toContain('href="/sign-in"');
    expect(browser.cookie).toBeNull();
    const api = await t.request('GET', pathOf(link), { headers: JSON_ACCEPT });
    expect(api.status).toBe(400);
    expect(api.body).toMatchObject({ success: false, status: 400, code: 'INVALID_TOKEN' });
  });

  it('two simultaneous uses of one magic link create one session (race on the single use)', async () => {
    const { link } = await magicLinkFor('race@example.com');
    const results = await Promise.all([1, 2, 3].map(() => postToken(tokenOf(link))));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    const user = await userRow('race@example.com');
    const sessions = await t.deps.db.selectFrom('sessions').select('id').where('user_id', '=', user!.id).execute();
    expect(sessions).toHaveLength(1);
  });

  it('magic link expires after 15 minutes', async () => {
    const early = await magicLinkFor('early@example.com');
    const late = await magicLinkFor('late@example.com');
    t.clock.advance(15 * MINUTE - SECOND_MS);
    expect((await confirmLink(early.link)).status).toBe(303);
    t.clock.advance(SECOND_MS);
    const page = await t.request('GET', pathOf(late.link), { headers: JSON_ACCEPT });
    expect(page.status).toBe(400);
    expect(page.body.code).toBe('INVALID_TOKEN');
    const res = await postToken(tokenOf(late.link));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
    expect(await userRow('late@example.com')).toBeUndefined();
  });

  it('refuses a forged, malformed or missing token', async () => {
    for (const q of ['?token=' + 'A'.repeat(43), '?token=short', '?token=%00%0a', '']) {
      const res = await t.request('GET', `/api/auth/magic-link/verify${q}`, { headers: JSON_ACCEPT });
      expect(res.status, q).toBe(400);
      expect(res.body.code).toBe('INVALID_TOKEN');
      const post = await postToken(q.slice('?token='.length) || 'x');
      expect(post.status, q).toBe(400);
      expect(post.body.code).toBe('INVALID_TOKEN');
    }
  });

  it('answers known and unknown emails with the same body (no account enumeration)', async () => {
    await t.signUp('exists@example.com');
    const known = await requestMagicLink('exists@example.com');
    const unknown = await requestMagicLink('nobody@example.com');
    expect(known.status).toBe(200);
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual(known.body);
    expect(known.cookie).toBeNull();
  });

  it('honours a relative or trusted returnTo', async () => {
    const rel = await magicLinkFor('ret1@example.com', '/dashboard?tab=sso');
    expect((await confirmLink(rel.link)).headers.get('location')).toBe('/dashboard?tab=sso');
    const abs = await magicLinkFor('ret2@example.com', `${BASE_URL}/welcome`);
    const api = await postToken(tokenOf(abs.link));
    expect(api.status).toBe(200);
    expect(api.body.data.returnTo).toBe(`${BASE_URL}/welcome`);
  });

  it('refuses an untrusted returnTo at the start, before any mail or token (open redirect)', async () => {
    for (const returnTo of ['https://evil.example/phish', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', `${BASE_URL}.evil.example/`]) {
      const res = await requestMagicLink('redirect@example.com', returnTo);
      expect(res.status, returnTo).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.details.issues[0].path).toBe('returnTo');
    }
    await t.services.emailLinks.idle();
    expect(smtp.to('redirect@example.com')).toHaveLength(0);
    expect(await tokenRows('magic_link')).toHaveLength(0);
  });

  it('refuses with 403 SSO_REQUIRED when the email domain is verified by an organization that requires SSO', async () => {
    await orgWith({ slug: 'sso-corp', authRequired: 'sso', domain: { name: 'sso-corp.com' } });
    const res = await requestMagicLink('worker@sso-corp.com');
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toBe('/api/auth/sso/sso-corp/login?login_hint=worker%40sso-corp.com');
    await t.services.emailLinks.idle();
    expect(smtp.to('worker@sso-corp.com')).toHaveLength(0);
    expect(await tokenRows('magic_link')).toHaveLength(0);
  });

  it('does not reveal an SSO membership when the link is asked for, but refuses it when the link is used', async () => {
    const u = await t.signUp('contractor@freelance.dev');
    await verified(u.id); // a member that proved the address (an unverified account's memberships do not block: see account-claim attacks)
    const org = await orgWith({ slug: 'strict', authRequired: 'sso' });
    await addMembership(org.id, u.id);
    const asked = await requestMagicLink('contractor@freelance.dev');
    const unknown = await requestMagicLink('someone-else@freelance.dev');
    expect(asked.status).toBe(200);
    expect(asked.body).toEqual(unknown.body);
    const mail = await mailTo('contractor@freelance.dev', /sign-in link/);
    const link = linkIn(mail, MAGIC);

    const api = await postToken(tokenOf(link));
    expect(api.status).toBe(403);
    expect(api.body).toMatchObject({ code: 'SSO_REQUIRED', details: { ssoUrl: '/api/auth/sso/strict/login?login_hint=contractor%40freelance.dev' } });
    expect(api.cookie).toBeNull();
    const browser = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT });
    expect(browser.status).toBe(403);
    expect(browser.text).toContain('href="/api/auth/sso/strict/login?login_hint=contractor%40freelance.dev"');
    const form = await confirmLink(link);
    expect(form.status).toBe(403);
    expect(form.text).toContain('href="/api/auth/sso/strict/login?login_hint=contractor%40freelance.dev"');
    const sessions = await t.deps.db.selectFrom('sessions').select('auth_method').where('user_id', '=', u.id).execute();
    expect(sessions.map((s) => s.auth_method)).toEqual(['password']);
  });

  it('re-checks the domain when the link is used: a domain that began requiring SSO meanwhile refuses it', async () => {
    const { link } = await magicLinkFor('first@turning.io');
    await orgWith({ slug: 'turning', authRequired: 'sso', domain: { name: 'turning.io' } });
    const res = await postToken(tokenOf(link));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.cookie).toBeNull();
    expect(await userRow('first@turning.io')).toBeUndefined();
  });

  it('starts the session with MFA pending for a user with a confirmed TOTP factor', async () => {
    const u = await t.signUp('mfa@example.com');
    await t.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', u.id).execute(); // enrolled after proving the address
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    const now = t.clock.now().toISOString();
    await t.deps.db.insertInto('mfa_factors').values({ id: newId(), user_id: u.id, type: 'totp', secret_enc: 'sealed', confirmed_at: now, last_used_step: null, created_at: now }).execute();
    const { link } = await magicLinkFor('mfa@example.com');
    const res = await confirmLink(link);
    expect(res.status).toBe(303);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.session).toMatchObject({ authMethod: 'magic_link', mfa: 'pending' });
  });

  it('auto-joins a new user at a verified domain with autoJoin (SPEC §7)', async () => {
    const org = await orgWith({ slug: 'joinme', domain: { name: 'joinme.io', autoJoin: true } });
    const { link } = await magicLinkFor('newbie@joinme.io');
    const res = await confirmLink(link);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.memberships).toEqual([{ organizationId: org.id, name: 'Org joinme', slug: 'joinme', role: 'member' }]);
  });

  it('answers 429 RATE_LIMITED with Retry-After after 5 requests for one address from one IP', async () => {
    const from = { ip: '192.0.2.70' }; // a documentation address: only a label for the limiter
    const ask = (email: string) => t.request('POST', '/api/auth/magic-link', { body: { email }, ...from });
    for (let i = 0; i < 5; i++) expect((await ask('flood@example.com')).status).toBe(200);
    const res = await ask('FLOOD@example.com');
    expect(res.status).toBe(429);
    expect(res.body.code).toBe('RATE_LIMITED');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('answers 429 after 10 requests from one IP address, whatever the emails', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await t.request('POST', '/api/auth/magic-link', { body: { email: `ip${i}@example.com` }, ip: '192.0.2.7' })).status).toBe(200);
    }
    const res = await t.request('POST', '/api/auth/magic-link', { body: { email: 'ip-last@example.com' }, ip: '192.0.2.7' });
    expect(res.status).toBe(429);
  });
});

describe('password reset (mail over real SMTP)', () => {
  async function resetLinkFor(email: string) {
    const res = await t.request('POST', '/api/auth/password/forgot', { body: { email }, ip: ip() });
    expect(res.status, res.text).toBe(200);
    const mail = await mailTo(email, /Reset your password/);
    return { mail, link: linkIn(mail, RESET) };
  }

  it('password reset on an account registered before the address was proven drops the squatter\'s API keys and TOTP (pre-account-takeover)', async () => {
    const squatter = await t.signUp('owner-of-mailbox@example.com', 'squatter password');
    const key = await t.request('POST', '/api/user/api-keys', { as: squatter, body: { name: 'kept for later' } });
    expect(key.status).toBe(201);
    const now = t.clock.now().toISOString();
    await t.deps.db.insertInto('mfa_factors').values({ id: newId(), user_id: squatter.id, type: 'totp', secret_enc: 'sealed', confirmed_at: now, last_used_step: null, created_at: now }).execute();
    // The mailbox owner resets the password.
    const { link } = await resetLinkFor('owner-of-mailbox@example.com');
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'the owner now' }, ip: ip() })).status).toBe(200);
    expect((await t.request('GET', '/api/user/me', { apiKey: key.body.data.key })).status).toBe(401);
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', squatter.id).execute()).toEqual([]);
    const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'owner-of-mailbox@example.com', password: 'the owner now' }, ip: ip() });
    expect(signIn.status).toBe(200);
    expect(signIn.body.data.session.mfa).toBe('none'); // not held at a second step the squatter controls
    const audit = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'user.password_reset').executeTakeFirstOrThrow();
    expect(JSON.parse(audit.metadata!)).toMatchObject({ claimedUnverifiedAccount: true, apiKeysRevoked: 1, factorsRemoved: 1 });
  });

  it('resets the password: the old one fails, the new one works, every session is revoked', async () => {
    const u = await t.signUp('reset@example.com', 'old password 1');
    const other = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'reset@example.com', password: 'old password 1' }, ip: ip() });
    const { mail, link } = await resetLinkFor('reset@example.com');
    expect(mail.text).toMatch(/expires in 15 minutes/);
    expect(mail.text).toMatch(/didn't ask for this/);
    const [row] = await tokenRows('password_reset');
    expect(row!.token_hash).toBe(sha256(tokenOf(link)));

    const res = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'new password 2' }, ip: ip() });
    expect(res.status).toBe(200);
    expect(res.cookie).toBeNull(); // does not sign in
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(401);
    expect((await t.request('GET', '/api/auth/session', { as: { cookie: other.cookie! } })).status).toBe(401);
    const old = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'reset@example.com', password: 'old password 1' }, ip: ip() });
    expect(old.status).toBe(401);
    const fresh = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'reset@example.com', password: 'new password 2' }, ip: ip() });
    expect(fresh.status).toBe(200);
    expect(fresh.body.data.user.emailVerified).toBe(true);
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'user.password_reset').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.target_id).toBe(u.id);
    expect(JSON.stringify(audit)).not.toContain(tokenOf(link));
  });

  it('reset token cannot be used twice', async () => {
    await t.signUp('reuse@example.com', 'old password 1');
    const { link } = await resetLinkFor('reuse@example.com');
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'new password 2' } })).status).toBe(200);
    const again = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'attacker pw 3' } });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('INVALID_TOKEN');
    const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'reuse@example.com', password: 'new password 2' }, ip: ip() });
    expect(signIn.status).toBe(200);
  });

  it('two simultaneous resets with one token: exactly one succeeds (race on the single use)', async () => {
    await t.signUp('race-reset@example.com', 'old password 1');
    const { link } = await resetLinkFor('race-reset@example.com');
    const results = await Promise.all(['first pass 1', 'second pass 2'].map((password) => t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    const winner = results[0]!.status === 200 ? 'first pass 1' : 'second pass 2';
    const loser = winner === 'first pass 1' ? 'second pass 2' : 'first pass 1';
    expect((await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'race-reset@example.com', password: winner }, ip: ip() })).status).toBe(200);
    expect((await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'race-reset@example.com', password: loser }, ip: ip() })).status).toBe(401);
  });

  it('reset token expires after 15 minutes', async () => {
    await t.signUp('expire@example.com', 'old password 1');
    const { link } = await resetLinkFor('expire@example.com');
    t.clock.advance(15 * MINUTE);
    const res = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'new password 2' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
    expect((await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'expire@example.com', password: 'old password 1' }, ip: ip() })).status).toBe(200);
  });

  it('a new reset leaves the earlier unused reset links dead', async () => {
    await t.signUp('two-links@example.com', 'old password 1');
    const first = await resetLinkFor('two-links@example.com');
    smtp.mails.length = 0;
    const second = await resetLinkFor('two-links@example.com');
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(second.link), password: 'new password 2' } })).status).toBe(200);
    const res = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(first.link), password: 'other password 3' } });
    expect(res.status).toBe(400);
  });

  it('a magic-link token is not a reset token (purposes do not mix)', async () => {
    await t.signUp('mix@example.com', 'old password 1');
    const { link } = await magicLinkFor('mix@example.com');
    const res = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'new password 2' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
  });

  it('rejects a weak new password without consuming the token', async () => {
    await t.signUp('weak@example.com', 'old password 1');
    const { link } = await resetLinkFor('weak@example.com');
    const weak = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'short' } });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe('VALIDATION_FAILED');
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'long enough now' } })).status).toBe(200);
  });

  it('answers an unknown email like a known one, and sends it no mail', async () => {
    await t.signUp('member@example.com');
    const known = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'member@example.com' }, ip: ip() });
    const unknown = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'ghost@example.com' }, ip: ip() });
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual(known.body);
    await t.services.emailLinks.idle();
    expect(smtp.to('member@example.com').filter((m) => /Reset your password/.test(m.subject))).toHaveLength(1);
    expect(smtp.to('ghost@example.com')).toHaveLength(0);
    expect(await tokenRows('password_reset')).toHaveLength(1);
  });

  it('reset is refused with 403 SSO_REQUIRED when the email domain requires SSO', async () => {
    await orgWith({ slug: 'locked', authRequired: 'sso', domain: { name: 'locked.io' } });
    const res = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'someone@locked.io' }, ip: ip() });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'SSO_REQUIRED', details: { ssoUrl: '/api/auth/sso/locked/login?login_hint=someone%40locked.io' } });
  });

  it('a member of an SSO-only organization gets a mail pointing to SSO and no reset token', async () => {
    const u = await t.signUp('dev@agency.net', 'my password 1');
    await verified(u.id); // a member that proved the address (an unverified account's memberships do not block: see account-claim attacks)
    const org = await orgWith({ slug: 'client-co', authRequired: 'sso' });
    await addMembership(org.id, u.id);
    const res = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'dev@agency.net' }, ip: ip() });
    const unknown = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'nobody@agency.net' }, ip: ip() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(unknown.body);
    const mail = await mailTo('dev@agency.net', /single sign-on/);
    expect(mail.text).toContain('Org client-co');
    expect(mail.text).toContain(`${BASE_URL}/api/auth/sso/client-co/login?login_hint=dev%40agency.net`);
    expect(mail.text).not.toContain('/reset-password');
    expect(await tokenRows('password_reset')).toHaveLength(0);
  });

  it('a reset link issued before the organization required SSO is refused when used', async () => {
    const u = await t.signUp('early@agency.net', 'my password 1');
    await verified(u.id); // a member that proved the address (an unverified account's memberships do not block: see account-claim attacks)
    const { link } = await resetLinkFor('early@agency.net');
    const before = (await userRow('early@agency.net'))!.password_hash;
    const org = await orgWith({ slug: 'now-strict', authRequired: 'sso' });
    await addMembership(org.id, u.id);
    const res = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'new password 2' } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect((await userRow('early@agency.net'))!.password_hash).toBe(before);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(200); // nothing revoked
  });

  it('answers 429 RATE_LIMITED after 5 reset requests for one address from one IP', async () => {
    for (let i = 0; i < 5; i++) expect((await t.request('POST', '/api/auth/password/forgot', { body: { email: 'many@example.com' }, ip: '192.0.2.71' })).status).toBe(200);
    const res = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'many@example.com' }, ip: '192.0.2.71' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBeTruthy();
  });

  it('serves the /reset-password page with a same-origin script and a strict CSP', async () => {
    const page = await t.request('GET', '/reset-password?token=abc', { headers: HTML_ACCEPT });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.text).toContain('<script type="module" src="/assets/reset-password.js">');
    expect(page.text).not.toContain('abc'); // the token is read by the script, never echoed
    const script = await t.request('GET', '/assets/reset-password.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.text).toContain("'/api/auth/password/reset'");
  });
});
