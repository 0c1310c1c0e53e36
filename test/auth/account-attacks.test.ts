import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BASE_URL, createApiKey, createOrg, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { markEmailVerified, seedVerifiedDomain, setSecurity } from '../helpers/policy.js';
import { createSmtpTestGatehouse, linkIn, pathOf, startSmtpCatcher, tokenOf, type SmtpCatcher, type SmtpTestGatehouse } from '../helpers/smtp.js';
import { CALLBACK, configureOidc, ssoLogin } from '../helpers/sso.js';

/**
 * Account-handling attacks from the outside security review (SPEC §12): a squatter who registered
 * someone's address before it was proven, promotion of such an account to superadmin, the public
 * domain SSO rule of password sign-in, and sessions outliving an unlinked SSO identity. Real
 * SMTP (mail is read off the wire), a real OIDC IdP (oidc-provider) on loopback, SQLite or
 * PostgreSQL (TEST_DATABASE_URL).
 */
let smtp: SmtpCatcher;
let idp: RealIdp;
let t: SmtpTestGatehouse;
let ipN = 0;
const ip = () => `10.9.${Math.floor(++ipN / 250)}.${ipN % 250}`;

const MAGIC = `${BASE_URL}/api/auth/magic-link/verify?token=`;
const RESET = `${BASE_URL}/reset-password?token=`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' };

beforeAll(async () => {
  smtp = await startSmtpCatcher();
  idp = await startRealIdp({
    redirectUris: [CALLBACK],
    users: [
      { sub: 'worker-sub', email: 'worker@corp.test', email_verified: true, name: 'Worker' },
      { sub: 'linked-sub', email: 'linked@corp.test', email_verified: true, name: 'Linked' },
      { sub: 'founder-sub', email: 'founder@corp.test', email_verified: true, name: 'Founder' },
    ],
  });
});
afterAll(async () => {
  await idp.close();
  await smtp.close();
});
beforeEach(async () => {
  smtp.mails.length = 0;
  t = await createSmtpTestGatehouse(smtp, { env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
});
afterEach(async () => {
  await t.destroy();
});

const mailTo = (address: string, subject: RegExp) => smtp.waitFor((m) => m.to.includes(address) && subject.test(m.subject));
const signIn = (email: string, password: string) => t.request('POST', '/api/auth/sign-in/email', { body: { email, password }, ip: ip() });
const session = (cookie: string) => t.request('GET', '/api/auth/session', { as: { cookie } });
const memberships = (userId: string) => t.deps.db.selectFrom('members').select(['organization_id', 'role']).where('user_id', '=', userId).execute();

/**
 * The squatter's trap: sign up the victim's address (never verified), create an organization, point
 * its SSO at an IdP of the squatter's own and require SSO — so that, as a member of it, the address
 * would be sent to the squatter's IdP.
 */
async function squat(email: string, slug: string): Promise<{ squatter: TestUser; orgId: string; key: string }> {
  const squatter = await t.signUp(email, 'squatter password');
  const orgId = await createOrg(t, squatter, `Squat ${slug}`, slug);
  await configureOidc(t, squatter, orgId, idp);
  const key = (await createApiKey(t, squatter, { name: 'kept for later' })).key;
  const raised = await setSecurity(t, orgId, squatter, { authRequired: 'sso' });
  expect(raised.status, raised.text).toBe(200);
  return { squatter, orgId, key };
}

async function expectSquatterGone(s: { squatter: TestUser; orgId: string; key: string }) {
  expect((await session(s.squatter.cookie)).status).toBe(401);
  expect((await t.request('GET', '/api/user/me', { apiKey: s.key })).status).toBe(401);
  expect(await memberships(s.squatter.id)).toEqual([]);
  // The organization belonged to the unproven holder: it is left without owners, and that is audited.
  const removed = await t.deps.db.selectFrom('audit_events').select(['organization_id', 'target_id', 'metadata']).where('action', '=', 'member.removed').execute();
  expect(removed).toHaveLength(1);
  expect(removed[0]).toMatchObject({ organization_id: s.orgId, target_id: s.squatter.id });
  expect(JSON.parse(removed[0]!.metadata!)).toEqual({ role: 'owner', reason: 'unverified_account_claimed', lastOwner: true });
}

describe('a squatter cannot make an address unclaimable (SSO required through the squatter\'s own IdP)', () => {
  it("the real owner's magic link is not refused with the squatter's SSO_REQUIRED; the claim removes the squatter's membership", async () => {
    const s = await squat('ceo@victim.test', 'squat-ml');
    // The trap is set: as a member, the account is now told to use the squatter's IdP.
    const trapped = await signIn('ceo@victim.test', 'squatter password');
    expect(trapped.status).toBe(403);
    expect(trapped.body.details.ssoUrl).toContain('/api/auth/sso/squat-ml/login');

    // The real owner asks for a link, reads it from the mail and confirms the sign-in.
    expect((await t.request('POST', '/api/auth/magic-link', { body: { email: 'ceo@victim.test' }, ip: ip() })).status).toBe(200);
    const mail = await mailTo('ceo@victim.test', /sign-in link/);
    expect(mail.text).not.toContain('/api/auth/sso/');
    expect(mail.text).not.toContain(idp.issuer);
    const link = linkIn(mail, MAGIC);
    const page = await t.request('GET', pathOf(link), { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('squat-ml');
    const res = await t.request('POST', '/api/auth/magic-link/verify', { rawBody: `token=${tokenOf(link)}`, headers: FORM });
    expect(res.status, res.text).toBe(303);
    const owner = await session(res.cookie!);
    expect(owner.body.data.user).toMatchObject({ id: s.squatter.id, email: 'ceo@victim.test', emailVerified: true });
    expect(owner.body.data.memberships).toEqual([]);
    await expectSquatterGone(s);
    const verified = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'user.email_verified').executeTakeFirstOrThrow();
    expect(JSON.parse(verified.metadata!)).toMatchObject({ method: 'magic_link', membershipsRemoved: 1, apiKeysRevoked: 1 });
  });

  it("the real owner's password reset mails a reset link, not the squatter's IdP; the reset claims the account", async () => {
    const s = await squat('cfo@victim.test', 'squat-reset');
    expect((await t.request('POST', '/api/auth/password/forgot', { body: { email: 'cfo@victim.test' }, ip: ip() })).status).toBe(200);
    const mail = await mailTo('cfo@victim.test', /reset/i);
    expect(mail.text).not.toContain('/api/auth/sso/');
    expect(mail.text).not.toContain(idp.issuer);
    expect(mail.text).not.toMatch(/single sign-on/i);
    const link = linkIn(mail, RESET);
    const reset = await t.request('POST', '/api/auth/password/reset', { body: { token: tokenOf(link), password: 'the owner password' }, ip: ip() });
    expect(reset.status, reset.text).toBe(200);
    await expectSquatterGone(s);
    const owner = await signIn('cfo@victim.test', 'the owner password');
    expect(owner.status, owner.text).toBe(200);
    expect(owner.body.data.user).toMatchObject({ id: s.squatter.id, emailVerified: true });
    expect((await signIn('cfo@victim.test', 'squatter password')).status).toBe(401);
  });

  it('the SSO requirement of a verified domain still stands in the way of an unverified account (public, proven by DNS)', async () => {
    const squatter = await t.signUp('someone@corp.test', 'squatter password');
    const corpOwner = await t.signUp('owner@corp-admin.test');
    const corpId = await createOrg(t, corpOwner, 'Corp', 'corp');
    await configureOidc(t, corpOwner, corpId, idp);
    await seedVerifiedDomain(t, corpId, 'corp.test');
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    const ml = await t.request('POST', '/api/auth/magic-link', { body: { email: 'someone@corp.test' }, ip: ip() });
    expect(ml.status).toBe(403);
    expect(ml.body.details.ssoUrl).toBe('/api/auth/sso/corp/login?login_hint=someone%40corp.test');
    const forgot = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'someone@corp.test' }, ip: ip() });
    expect(forgot.status).toBe(403);
    expect(forgot.body.code).toBe('SSO_REQUIRED');
    expect((await session(squatter.cookie)).status).toBe(200); // nothing claimed
  });
});

describe('SSO linking claims an unverified account', () => {
  it("removes the memberships made before the proof, except the linking organization's (which proved the domain)", async () => {
    const founder = await t.signUp('founder@corp.test', 'founder password'); // never verified
    const corpId = await createOrg(t, founder, 'Corp', 'corp');
    await configureOidc(t, founder, corpId, idp);
    await seedVerifiedDomain(t, corpId, 'corp.test');
    const sideId = await createOrg(t, founder, 'Side', 'side');
    const run = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => idp.login(u, 'founder-sub'));
    expect(run.callback?.status, run.callback?.text).toBe(302);
    const now = (await session(run.callback!.cookie!)).body.data;
    expect(now.user).toMatchObject({ id: founder.id, emailVerified: true });
    expect(now.memberships).toEqual([expect.objectContaining({ organizationId: corpId, role: 'owner' })]);
    expect((await session(founder.cookie)).status).toBe(401);
    const removed = await t.deps.db.selectFrom('audit_events').select(['organization_id', 'metadata']).where('action', '=', 'member.removed').execute();
    expect(removed.map((r) => ({ organizationId: r.organization_id, metadata: JSON.parse(r.metadata!) }))).toEqual([
      { organizationId: sideId, metadata: { role: 'owner', reason: 'unverified_account_claimed', lastOwner: true } },
    ]);
  });
});

describe('gatehouse admin create on a squatted account', () => {
  it("admin create on a squatted address: the squatter's key and cookie answer 401 after promotion", async () => {
    // Someone signs up ops@saas.test (never verified) and mints an API key, waiting.
    const squatter = await t.signUp('ops@saas.test', 'squatter password');
    const key = await createApiKey(t, squatter, { name: 'waiting' });
    const orgId = await createOrg(t, squatter, 'Squat', 'squat-ops');
    expect((await t.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(200);

    const { user, created, revoked } = await t.services.accounts.createSuperadmin({ email: 'ops@saas.test', password: 'operator password' });
    expect(created).toBe(false);
    expect(user).toMatchObject({ id: squatter.id, is_superadmin: 1, email_verified: 1 });
    expect(revoked).toEqual({ sessions: 1, apiKeys: 1 });

    expect((await t.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(401);
    expect((await t.request('GET', '/api/admin/organizations', { apiKey: key.key })).status).toBe(401);
    expect((await session(squatter.cookie)).status).toBe(401);
    expect((await t.request('GET', '/api/admin/organizations', { as: squatter })).status).toBe(401);
    expect((await signIn('ops@saas.test', 'squatter password')).status).toBe(401);
    expect(await memberships(squatter.id)).toEqual([]);
    const audit = await t.deps.db.selectFrom('audit_events').select(['metadata']).where('action', '=', 'user.promoted_superadmin').executeTakeFirstOrThrow();
    expect(JSON.parse(audit.metadata!)).toMatchObject({ claimedUnverifiedAccount: true, sessionsRevoked: 1, apiKeysRevoked: 1, membershipsRemoved: 1 });
    expect(await t.deps.db.selectFrom('audit_events').select('organization_id').where('action', '=', 'member.removed').execute()).toEqual([{ organization_id: orgId }]);

    const operator = await signIn('ops@saas.test', 'operator password');
    expect(operator.status).toBe(200);
    expect((await t.request('GET', '/api/admin/organizations', { as: { cookie: operator.cookie! } })).status).toBe(200);
  });

  it('admin create on a verified account ends its sessions and keys before promoting it (memberships kept)', async () => {
    const u = await t.signUp('lead@saas.test', 'their password');
    await markEmailVerified(t, u.id);
    const orgId = await createOrg(t, u, 'Theirs', 'theirs');
    const key = await createApiKey(t, u, { name: 'before promotion' });
    const { revoked } = await t.services.accounts.createSuperadmin({ email: 'lead@saas.test', password: 'operator password' });
    expect(revoked).toEqual({ sessions: 1, apiKeys: 1 });
    expect((await t.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(401);
    expect((await session(u.cookie)).status).toBe(401);
    expect(await memberships(u.id)).toEqual([{ organization_id: orgId, role: 'owner' }]);
    expect((await signIn('lead@saas.test', 'operator password')).status).toBe(200);
  });
});

describe('password sign-in at an SSO-only verified domain: SSO_REQUIRED is public (SPEC §12)', () => {
  let corpId: string;
  let corpOwner: TestUser;
  let verifications = 0;

  beforeEach(async () => {
    corpOwner = await t.signUp('owner@corp-admin.test');
    corpId = await createOrg(t, corpOwner, 'Corp', 'corp');
    await configureOidc(t, corpOwner, corpId, idp);
    await seedVerifiedDomain(t, corpId, 'corp.test');
    verifications = 0;
    const real = t.deps.passwords;
    const verify = real.verify.bind(real);
    real.verify = async (h, p) => (verifications++, verify(h, p));
  });

  const expectSsoRequired = (res: Awaited<ReturnType<typeof signIn>>, email: string) => {
    expect(res.status, res.text).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toBe(`/api/auth/sso/corp/login?login_hint=${encodeURIComponent(email)}`);
    expect(res.cookie).toBeNull();
  };

  it('a member at the domain who types any password is told SSO_REQUIRED, not "wrong email or password", before the password is checked', async () => {
    const member = await t.signUp('member@corp.test', 'member password'); // before the domain required SSO
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    verifications = 0;
    expectSsoRequired(await signIn('member@corp.test', 'a wrong password'), 'member@corp.test');
    expectSsoRequired(await signIn('member@corp.test', 'member password'), 'member@corp.test');
    expectSsoRequired(await signIn('nobody-yet@corp.test', 'anything at all'), 'nobody-yet@corp.test');
    expect(verifications).toBe(0); // no real hash was verified: the answer cannot depend on the password
    const refused = await t.deps.db.selectFrom('audit_events').select(['target_id', 'metadata']).where('action', '=', 'user.sign_in_refused').execute();
    expect(refused.map((r) => r.target_id)).toEqual([member.id, member.id, null]);
    expect(JSON.parse(refused[0]!.metadata!)).toEqual({ method: 'password', reason: 'sso_required', rule: 'domain' });
  });

  it('a user created by SSO (no password) at the domain gets SSO_REQUIRED for any password', async () => {
    const run = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => idp.login(u, 'worker-sub'));
    expect(run.callback?.status, run.callback?.text).toBe(302);
    const row = await t.deps.db.selectFrom('users').select(['password_hash']).where('email', '=', 'worker@corp.test').executeTakeFirstOrThrow();
    expect(row.password_hash).toBeNull();
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    expectSsoRequired(await signIn('worker@corp.test', 'guessing a password'), 'worker@corp.test');
  });

  it('without SSO required the domain changes nothing: a wrong password is still INVALID_CREDENTIALS', async () => {
    await t.signUp('member@corp.test', 'member password');
    const res = await signIn('member@corp.test', 'a wrong password');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('INVALID_CREDENTIALS');
    expect((await signIn('member@corp.test', 'member password')).status).toBe(200);
  });

  it('the per-account sign-in limit still counts at an SSO-only domain (429 after 10 attempts from one address)', async () => {
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    const from = ip();
    const signInFrom = (password: string) => t.request('POST', '/api/auth/sign-in/email', { body: { email: 'target@corp.test', password }, ip: from });
    for (let i = 0; i < 10; i++) expect((await signInFrom(`guess ${i} guess`)).status).toBe(403);
    const res = await signInFrom('guess 11 guess');
    expect(res.status).toBe(429);
    expect(res.body.code).toBe('RATE_LIMITED');
  });

  it('superadmin break-glass at an SSO-only domain: the right password signs in, a wrong one gets the same SSO_REQUIRED as anyone', async () => {
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    await t.services.accounts.createSuperadmin({ email: 'root@corp.test', password: 'root password 1' });
    const wrong = await signIn('root@corp.test', 'not the root password');
    const stranger = await signIn('stranger@corp.test', 'not the root password');
    expectSsoRequired(wrong, 'root@corp.test');
    expect({ ...wrong.body, details: null, message: null }).toEqual({ ...stranger.body, details: null, message: null });
    const failed = await t.deps.db.selectFrom('audit_events').select('action').where('action', '=', 'user.sign_in_failed').execute();
    expect(failed).toHaveLength(1); // the failed break-glass attempt is on the record
    const ok = await signIn('root@corp.test', 'root password 1');
    expect(ok.status, ok.text).toBe(200);
    expect((await setSecurity(t, corpId, { cookie: ok.cookie! }, { authRequired: 'any' })).status).toBe(200);
  });

  it('a requirement from membership only is still told only after the password is right', async () => {
    const contractor = await t.signUp('contractor@freelance.test', 'contractor password');
    await markEmailVerified(t, contractor.id);
    await t.deps.db.insertInto('members').values({ organization_id: corpId, user_id: contractor.id, role: 'member', created_at: t.clock.now().toISOString(), updated_at: t.clock.now().toISOString() }).execute();
    expect((await setSecurity(t, corpId, corpOwner, { authRequired: 'sso' })).status).toBe(200);
    const wrong = await signIn(contractor.email, 'a wrong password');
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('INVALID_CREDENTIALS');
    const right = await signIn(contractor.email, 'contractor password');
    expect(right.status).toBe(403);
    expect(right.body.code).toBe('SSO_REQUIRED');
  });
});

describe('unlinking an SSO identity', () => {
  it('the sessions an unlinked identity created end: its cookie answers 401 after the unlink', async () => {
    const owner = await t.signUp('owner@corp-admin.test');
    const orgId = await createOrg(t, owner, 'Corp', 'corp');
    await configureOidc(t, owner, orgId, idp);
    await seedVerifiedDomain(t, orgId, 'corp.test'); // the IdP's user is created with a verified email
    const first = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => idp.login(u, 'linked-sub'));
    const second = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => idp.login(u, 'linked-sub'));
    expect(first.callback?.status, first.callback?.text).toBe(302);
    expect(second.callback?.status, second.callback?.text).toBe(302);
    const cookies = [first.callback!.cookie!, second.callback!.cookie!];
    for (const c of cookies) expect((await session(c)).status).toBe(200);
    const me = (await session(cookies[0]!)).body.data.user;
    // Another way into the same account (a magic link): not the identity's to end.
    expect((await t.request('POST', '/api/auth/magic-link', { body: { email: 'linked@corp.test' }, ip: ip() })).status).toBe(200);
    const link = linkIn(await mailTo('linked@corp.test', /sign-in link/), MAGIC);
    const viaLink = await t.request('POST', '/api/auth/magic-link/verify', { body: { token: tokenOf(link) }, headers: { accept: 'application/json' } });
    expect(viaLink.status).toBe(200);

    const list = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
    const identityId = list.body.data.items[0].id as string;
    const unlink = await t.request('DELETE', `/api/user/organizations/${orgId}/sso/identities/${identityId}`, { as: owner });
    expect(unlink.status).toBe(200);

    for (const c of cookies) expect((await session(c)).status).toBe(401);
    expect((await session(viaLink.cookie!)).status).toBe(200);
    expect((await session(owner.cookie)).status).toBe(200);
    const audit = await t.deps.db.selectFrom('audit_events').select(['metadata', 'organization_id']).where('action', '=', 'sso.identity_unlinked').executeTakeFirstOrThrow();
    expect(audit.organization_id).toBe(orgId);
    expect(JSON.parse(audit.metadata!)).toMatchObject({ userId: me.id, subject: 'linked-sub', sessionsRevoked: 2 });
  });
});
