import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY, MINUTE } from '../../src/clock.js';
import { sha256 } from '../../src/crypto/tokens.js';
import { newId } from '../../src/ids.js';
import { BASE_URL } from '../helpers/app.js';
import { createSmtpTestGatehouse, linkIn, pathOf, startSmtpCatcher, tokenOf, type SmtpCatcher, type SmtpTestGatehouse } from '../helpers/smtp.js';

const VERIFY = `${BASE_URL}/api/auth/email/verify?token=`;
const JSON_ACCEPT = { accept: 'application/json' };
const HTML_ACCEPT = { accept: 'text/html' };

let smtp: SmtpCatcher;
let t: SmtpTestGatehouse;

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

const verificationMail = (address: string) => smtp.waitFor((m) => m.to.includes(address) && /Verify your email/.test(m.subject));

async function verifiedFlag(userId: string) {
  return (await t.deps.db.selectFrom('users').select('email_verified').where('id', '=', userId).executeTakeFirstOrThrow()).email_verified;
}

async function orgWithDomain(slug: string, domain: string, opts: { autoJoin: boolean; requireApproval?: boolean; role?: 'member' | 'admin' }) {
  const now = t.clock.now().toISOString();
  const id = newId();
  await t.deps.db.insertInto('organizations').values({ id, name: `Org ${slug}`, slug, auth_required: 'any', require_mfa: 0, created_at: now, updated_at: now }).execute();
  await t.deps.db.insertInto('domains').values({
    id: newId(), organization_id: id, domain, status: 'verified', verification_token: `tok-${slug}`, verified_at: now, last_checked_at: now,
    auto_join: opts.autoJoin ? 1 : 0, require_approval: opts.requireApproval ? 1 : 0, join_role: opts.role ?? 'member', created_at: now, updated_at: now,
  }).execute();
  return id;
}

describe('email verification (mail over real SMTP)', () => {
  it('sign-up mails a 24-hour link; a browser opening it is verified and sent to /', async () => {
    const u = await t.signUp('verify@example.com');
    const mail = await verificationMail('verify@example.com');
    expect(mail.text).toMatch(/expires in 24 hours/);
    expect(mail.text).toMatch(/didn't ask for this/);
    const link = linkIn(mail, VERIFY);
    const [row] = await t.deps.db.selectFrom('one_time_tokens').selectAll().where('purpose', '=', 'email_verify').execute();
    expect(row!.token_hash).toBe(sha256(tokenOf(link)));
    expect(Date.parse(row!.expires_at) - t.clock.now().getTime()).toBe(DAY);
    expect(await verifiedFlag(u.id)).toBe(0);

    const res = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT, as: u });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/');
    expect(res.text).toMatch(/verified/);
    expect(await verifiedFlag(u.id)).toBe(1);
    const session = await t.request('GET', '/api/auth/session', { as: u });
    expect(session.body.data.user.emailVerified).toBe(true);
  });

  it('answers a JSON client with the envelope and the verified user', async () => {
    const u = await t.signUp('json@example.com');
    const link = linkIn(await verificationMail('json@example.com'), VERIFY);
    const res = await t.request('GET', pathOf(link), { headers: JSON_ACCEPT, as: u });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, data: { user: { id: u.id, email: 'json@example.com', emailVerified: true } } });
  });

  it('verification link cannot be used twice', async () => {
    const u = await t.signUp('once@example.com');
    const link = linkIn(await verificationMail('once@example.com'), VERIFY);
    expect((await t.request('GET', pathOf(link), { as: u })).status).toBe(302);
    const again = await t.request('GET', pathOf(link), { headers: JSON_ACCEPT, as: u });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('INVALID_TOKEN');
    const browser = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT, as: u });
    expect(browser.status).toBe(400);
    expect(browser.text).toContain('href="/sign-in"');
  });

  it('verification link expires after 24 hours', async () => {
    const a = await t.signUp('day-a@example.com');
    const b = await t.signUp('day-b@example.com');
    const linkA = linkIn(await verificationMail('day-a@example.com'), VERIFY);
    const linkB = linkIn(await verificationMail('day-b@example.com'), VERIFY);
    t.clock.advance(DAY - MINUTE);
    expect((await t.request('GET', pathOf(linkA), { as: a })).status).toBe(302);
    t.clock.advance(MINUTE);
    const res = await t.request('GET', pathOf(linkB), { headers: JSON_ACCEPT, as: b });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
    expect(await verifiedFlag(a.id)).toBe(1);
    expect(await verifiedFlag(b.id)).toBe(0);
  });

  it('verify-request mails a new link to the signed-in user, and says so when already verified', async () => {
    const u = await t.signUp('again@example.com');
    await verificationMail('again@example.com');
    const res = await t.request('POST', '/api/auth/email/verify-request', { as: u });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ alreadyVerified: false });
    await smtp.waitFor((m) => m.to.includes('again@example.com') && /Verify/.test(m.subject) && m !== smtp.mails[0]);
    const mails = smtp.to('again@example.com');
    expect(mails).toHaveLength(2);
    const link = linkIn(mails[1]!, VERIFY);
    expect((await t.request('GET', pathOf(link), { as: u })).status).toBe(302);

    const done = await t.request('POST', '/api/auth/email/verify-request', { as: u });
    expect(done.status).toBe(200);
    expect(done.body.data).toEqual({ alreadyVerified: true });
    expect(done.body.message).toMatch(/already verified/);
    await t.services.emailLinks.idle();
    expect(smtp.to('again@example.com')).toHaveLength(2);
  });

  it('verify-request is rate-limited per account (a session cannot be used to flood a mailbox)', async () => {
    await t.destroy();
    t = await createSmtpTestGatehouse(smtp, { rateLimits: { 'email-verify:account': { points: 2, duration: 3600 } } });
    const u = await t.signUp('flood@example.com');
    for (let i = 0; i < 2; i++) expect((await t.request('POST', '/api/auth/email/verify-request', { as: u })).status).toBe(200);
    const limited = await t.request('POST', '/api/auth/email/verify-request', { as: u });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    await t.services.emailLinks.idle();
  });

  it('verify-request needs a signed-in caller, and a cookie write needs a trusted Origin (CSRF)', async () => {
    const anon = await t.request('POST', '/api/auth/email/verify-request');
    expect(anon.status).toBe(401);
    const u = await t.signUp('csrf@example.com');
    const forged = await t.request('POST', '/api/auth/email/verify-request', { as: u, origin: 'https://evil.example' });
    expect(forged.status).toBe(403);
    expect(forged.body.code).toBe('CSRF_REJECTED');
  });

  it('verifying the email auto-joins the organization that verified the domain with autoJoin (SPEC §7)', async () => {
    const orgId = await orgWithDomain('autojoin', 'autojoin.io', { autoJoin: true, role: 'admin' });
    const u = await t.signUp('staff@autojoin.io');
    // Not before: an unverified address proves nothing.
    expect((await t.request('GET', '/api/auth/session', { as: u })).body.data.memberships).toEqual([]);
    const link = linkIn(await verificationMail('staff@autojoin.io'), VERIFY);
    expect((await t.request('GET', pathOf(link), { as: u })).status).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: u });
    expect(session.body.data.memberships).toEqual([{ organizationId: orgId, name: 'Org autojoin', slug: 'autojoin', role: 'admin' }]);
  });

  it('with requireApproval, verifying creates one pending join request instead of a membership', async () => {
    const orgId = await orgWithDomain('approve', 'approve.io', { autoJoin: true, requireApproval: true });
    const u = await t.signUp('asks@approve.io');
    const link = linkIn(await verificationMail('asks@approve.io'), VERIFY);
    expect((await t.request('GET', pathOf(link), { as: u })).status).toBe(302);
    expect((await t.request('GET', '/api/auth/session', { as: u })).body.data.memberships).toEqual([]);
    const requests = await t.deps.db.selectFrom('join_requests').selectAll().where('organization_id', '=', orgId).execute();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ user_id: u.id, status: 'pending' });
  });

  it('sendEmailVerification (called at sign-up) mails a working link for an existing unverified user', async () => {
    const u = await t.signUp('direct@example.com');
    await verificationMail('direct@example.com');
    const row = await t.deps.db.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirstOrThrow();
    await t.services.emailLinks.sendEmailVerification({ ip: null, userAgent: null, requestId: null }, row);
    await t.services.emailLinks.idle();
    const mails = smtp.to('direct@example.com');
    expect(mails).toHaveLength(2);
    expect((await t.request('GET', pathOf(linkIn(mails[1]!, VERIFY)), { as: u })).status).toBe(302);
    expect(await verifiedFlag(u.id)).toBe(1);
  });

  it("a mailbox owner who opens a link for an account someone else registered does not verify it (the link needs that account's session)", async () => {
    const orgId = await orgWithDomain('squat', 'squat.io', { autoJoin: true });
    const squatter = await t.signUp('ceo@squat.io', 'squatter password');
    const link = linkIn(await verificationMail('ceo@squat.io'), VERIFY);
    // The real owner opens it in a browser without the squatter's session (or with their own other session).
    const owner = await t.signUp('someone-else@example.com');
    for (const as of [undefined, owner]) {
      const browser = await t.request('GET', pathOf(link), { headers: HTML_ACCEPT, ...(as ? { as } : {}) });
      expect(browser.status).toBe(302);
      expect(browser.headers.get('location')).toBe(`/sign-in?email=ceo%40squat.io&returnTo=${encodeURIComponent(pathOf(link))}`);
    }
    expect((await t.request('GET', `/sign-in?email=ceo%40squat.io&returnTo=${encodeURIComponent(pathOf(link))}`)).status).toBe(200); // the sign-in page accepts it
    const api = await t.request('GET', pathOf(link), { headers: JSON_ACCEPT });
    expect(api.status).toBe(401);
    expect(api.body.code).toBe('UNAUTHENTICATED');
    expect(await verifiedFlag(squatter.id)).toBe(0);
    expect(await t.deps.db.selectFrom('members').select('user_id').where('organization_id', '=', orgId).execute()).toEqual([]);
    // The link is still usable by its account (signed in, e.g. after the sign-in page sent it back).
    expect((await t.request('GET', pathOf(link), { as: squatter })).status).toBe(302);
    expect(await verifiedFlag(squatter.id)).toBe(1);
  });
});

describe('SMTP delivery', () => {
  it('authenticates with the user and password in SMTP_URL', async () => {
    const authed = await startSmtpCatcher({ auth: { user: 'mailer', pass: 'p@ss word' } });
    const g = await createSmtpTestGatehouse(authed);
    try {
      const res = await g.request('POST', '/api/auth/magic-link', { body: { email: 'auth@example.com' } });
      expect(res.status).toBe(200);
      const mail = await authed.waitFor((m) => m.to.includes('auth@example.com'));
      expect(mail.subject).toMatch(/sign-in link/);
      expect(authed.logins).toEqual(['mailer']);
    } finally {
      await g.destroy();
      await authed.close();
    }
  });

  it('an unreachable SMTP server does not change the anonymous answers (no enumeration through errors); verify-request says 503', async () => {
    const dead = await startSmtpCatcher();
    await dead.close(); // nothing listens on this loopback port any more
    const g = await createSmtpTestGatehouse(dead);
    try {
      await g.signUp('down@example.com');
      const known = await g.request('POST', '/api/auth/password/forgot', { body: { email: 'down@example.com' } });
      const unknown = await g.request('POST', '/api/auth/password/forgot', { body: { email: 'none@example.com' } });
      expect(known.status).toBe(200);
      expect(known.body).toEqual(unknown.body);
      await g.services.emailLinks.idle();
      // A signed-in user asking for a verification link is told the truth: it could not be sent.
      const u = await g.signUp('down2@example.com');
      const res = await g.request('POST', '/api/auth/email/verify-request', { as: u });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await g.destroy();
    }
  });
});
