import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { markEmailVerified, seedConfirmedFactor, seedVerifiedDomain, setSecurity } from '../helpers/policy.js';
import { CALLBACK, configureOidc, ssoLogin } from '../helpers/sso.js';

/**
 * SPEC §6 enforcement, every rule from both sides (allowed and refused), with a real OIDC IdP
 * (oidc-provider) behind "an SSO session satisfies the policy".
 */
let t: TestGatehouse;
let idp: RealIdp;

beforeAll(async () => {
  idp = await startRealIdp({
    redirectUris: [CALLBACK],
    users: [
      { sub: 'sso-owner', email: 'owner@sso.test', email_verified: true, name: 'Owner' },
      { sub: 'sso-member', email: 'member@sso.test', email_verified: true, name: 'Member' },
      { sub: 'mfa-member', email: 'member@mfa.test', email_verified: true, name: 'MFA member' },
      { sub: 'other-member', email: 'someone@other-sso.test', email_verified: true, name: 'Other' },
    ],
  });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
});
afterAll(async () => {
  await t.destroy();
  await idp.close();
});

const path = (orgId: string, rest = '') => `/api/user/organizations/${orgId}${rest}`;
const signIn = (email: string, password = 'correct horse battery') => t.request('POST', '/api/auth/sign-in/email', { body: { email, password } });

/** An organization with an owner, a member, an OIDC connection and (optionally) a verified domain. */
async function orgWithSso(slug: string, domain?: string) {
  const owner = await t.signUp(`owner@${slug}.example`);
  const orgId = await createOrg(t, owner, slug, slug);
  await configureOidc(t, owner, orgId, idp);
  if (domain) await seedVerifiedDomain(t, orgId, domain);
  return { owner, orgId };
}

async function ssoCookie(slug: string, sub: string): Promise<string> {
  const run = await ssoLogin(t, `/api/auth/sso/${slug}/login`, (u) => idp.login(u, sub));
  if (run.callback?.status !== 302 || !run.callback.cookie) throw new Error(`SSO login failed: ${run.callback?.status} ${run.callback?.text}`);
  return run.callback.cookie;
}

describe('security settings', () => {
  it('defaults to any / no MFA, and only the owner reads or writes them', async () => {
    const owner = await t.signUp('owner@settings.example');
    const admin = await t.signUp('admin@settings.example');
    const orgId = await createOrg(t, owner, 'Settings', 'settings');
    await addMember(t, owner, orgId, admin, 'admin');
    const get = await t.request('GET', path(orgId, '/settings/security'), { as: owner });
    expect(get.status).toBe(200);
    expect(get.body.data).toEqual({ authRequired: 'any', requireMfa: false });
    expect((await t.request('GET', path(orgId, '/settings/security'), { as: admin })).status).toBe(403);
    expect((await setSecurity(t, orgId, admin, { authRequired: 'mfa' })).status).toBe(403);
    const bad = await setSecurity(t, orgId, owner, { authRequired: 'sometimes' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
  });

  it('raising to sso without an enabled SSO connection is 409 SSO_NOT_CONFIGURED', async () => {
    const owner = await t.signUp('owner@nosso.example');
    const orgId = await createOrg(t, owner, 'No SSO', 'no-sso');
    const res = await setSecurity(t, orgId, owner, { authRequired: 'sso' });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('SSO_NOT_CONFIGURED');
    // A disabled connection does not count either.
    await configureOidc(t, owner, orgId, idp, { enabled: false });
    expect((await setSecurity(t, orgId, owner, { authRequired: 'sso' })).body.code).toBe('SSO_NOT_CONFIGURED');
    expect((await t.request('GET', path(orgId, '/settings/security'), { as: owner })).body.data.authRequired).toBe('any');
  });

  it('every change is audit-logged with before and after', async () => {
    const { owner, orgId } = await orgWithSso('audited');
    const key = await createApiKey(t, owner, { name: 'break-glass', organizationId: orgId });
    expect((await setSecurity(t, orgId, owner, { authRequired: 'mfa', requireMfa: true })).status).toBe(200);
    // The owner has no factor: from now on the owner's password session is refused, the API key is not.
    expect((await t.request('GET', path(orgId, '/settings/security'), { as: owner })).body.code).toBe('MFA_ENROLLMENT_REQUIRED');
    const events = await t.deps.db.selectFrom('audit_events').selectAll().where('organization_id', '=', orgId).where('action', '=', 'organization.security_updated').execute();
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.metadata!)).toMatchObject({ from: { authRequired: 'any', requireMfa: false }, to: { authRequired: 'mfa', requireMfa: true }, direction: 'raised' });
    expect((await setSecurity(t, orgId, { apiKey: key.key }, { authRequired: 'any' })).status).toBe(200);
    const after = await t.deps.db.selectFrom('audit_events').selectAll().where('organization_id', '=', orgId).where('action', '=', 'organization.security_updated').orderBy('id').execute();
    expect(after).toHaveLength(2);
    expect(JSON.parse(after[1]!.metadata!)).toMatchObject({ direction: 'lowered', to: { authRequired: 'any', requireMfa: false } });
    expect(after[1]!.actor_type).toBe('api_key');
  });
});

describe('authRequired: sso', () => {
  let orgId: string;
  let owner: TestUser;
  let member: TestUser;
  let memberKey: string;
  let ownerKey: string;

  beforeAll(async () => {
    ({ owner, orgId } = await orgWithSso('sso-org', 'sso.test'));
    member = await t.signUp('member@contractor.example');
    await addMember(t, owner, orgId, member, 'member');
    memberKey = (await createApiKey(t, member, { name: 'ci' })).key;
    ownerKey = (await createApiKey(t, owner, { name: 'break-glass' })).key;
    const res = await setSecurity(t, orgId, owner, { authRequired: 'sso' });
    expect(res.status).toBe(200);
  });

  it('refuses password sign-in of a member with 403 SSO_REQUIRED and the SSO URL', async () => {
    const res = await signIn(member.email);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toBe(`/api/auth/sso/sso-org/login?login_hint=${encodeURIComponent(member.email)}`);
    expect(res.cookie).toBeNull();
  });

  it('does not reveal membership before the password is right (wrong password stays INVALID_CREDENTIALS)', async () => {
    const res = await signIn(member.email, 'wrong password!!');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('INVALID_CREDENTIALS');
  });

  it('refuses password sign-in and sign-up for any email at the verified domain, member or not', async () => {
    const signUp = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'newcomer@SSO.test', password: 'correct horse battery' } });
    expect(signUp.status).toBe(403);
    expect(signUp.body.code).toBe('SSO_REQUIRED');
    expect(signUp.body.details.ssoUrl).toContain('/api/auth/sso/sso-org/login');
    expect(await t.deps.db.selectFrom('users').select('id').where('email', '=', 'newcomer@sso.test').executeTakeFirst()).toBeUndefined();
  });

  it('lets unrelated users sign in with a password', async () => {
    const other = await t.signUp('someone@unrelated.example');
    expect((await signIn(other.email)).status).toBe(200);
  });

  it("refuses a password session on the organization's tenant routes, but not on the user's own routes", async () => {
    // member.cookie is a password session from before the policy was raised.
    const res = await t.request('GET', path(orgId), { as: member });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toContain('/api/auth/sso/sso-org/login');
    expect((await t.request('GET', '/api/user/me', { as: member })).status).toBe(200);
  });

  it("accepts a session authenticated by this organization's SSO (real OIDC IdP)", async () => {
    const cookie = await ssoCookie('sso-org', 'sso-member');
    const res = await t.request('GET', path(orgId), { as: { cookie } });
    expect(res.status).toBe(200);
  });

  it("refuses a session authenticated by another organization's SSO", async () => {
    const { orgId: otherOrg, owner: otherOwner } = await orgWithSso('other-sso-org');
    const cookie = await ssoCookie('other-sso-org', 'other-member');
    // Make the other-SSO user a member of sso-org too, through an invitation.
    const me = (await t.request('GET', '/api/auth/session', { as: { cookie } })).body.data.user;
    expect(me.email).toBe('someone@other-sso.test');
    await t.deps.db.insertInto('members').values({ organization_id: orgId, user_id: me.id, role: 'member', created_at: t.clock.now().toISOString(), updated_at: t.clock.now().toISOString() }).execute();
    const res = await t.request('GET', path(orgId), { as: { cookie } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect((await t.request('GET', path(otherOrg), { as: { cookie } })).status).toBe(200);
    expect(otherOwner).toBeTruthy();
  });

  it('API keys are exempt (the documented break-glass path)', async () => {
    expect((await t.request('GET', path(orgId), { apiKey: memberKey })).status).toBe(200);
  });

  it('magic link and password reset are refused with SSO_REQUIRED for the verified domain', async () => {
    const magic = await t.request('POST', '/api/auth/magic-link', { body: { email: 'anyone@sso.test' } });
    expect(magic.status).toBe(403);
    expect(magic.body.code).toBe('SSO_REQUIRED');
    const forgot = await t.request('POST', '/api/auth/password/forgot', { body: { email: 'anyone@sso.test' } });
    expect(forgot.status).toBe(403);
    expect(forgot.body.code).toBe('SSO_REQUIRED');
  });

  it("an owner's password session cannot lower the policy, the owner's API key can", async () => {
    const refused = await setSecurity(t, orgId, owner, { authRequired: 'any' });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('SSO_REQUIRED');
    const lowered = await setSecurity(t, orgId, { apiKey: ownerKey }, { authRequired: 'any' });
    expect(lowered.status).toBe(200);
    expect(lowered.body.data).toEqual({ authRequired: 'any', requireMfa: false });
    expect((await signIn(member.email)).status).toBe(200);
    expect((await t.request('GET', path(orgId), { as: member })).status).toBe(200);
    expect((await setSecurity(t, orgId, { apiKey: ownerKey }, { authRequired: 'sso' })).status).toBe(200);
  });

  it('refuses to mint an unpinned API key from a session that does not satisfy the policy (no way around SSO)', async () => {
    const res = await t.request('POST', '/api/user/api-keys', { as: member, body: { name: 'escape hatch' } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    const pinned = await t.request('POST', '/api/user/api-keys', { as: member, body: { name: 'pinned', organizationId: orgId } });
    expect(pinned.status).toBe(403);
    expect(pinned.body.code).toBe('SSO_REQUIRED');
    expect(await t.deps.db.selectFrom('api_keys').select('id').where('user_id', '=', member.id).execute()).toHaveLength(1); // the key from before the policy
    // The same user through the organization's SSO may create one.
    const cookie = await ssoCookie('sso-org', 'sso-member');
    expect((await t.request('POST', '/api/user/api-keys', { as: { cookie }, body: { name: 'ok' } })).status).toBe(201);
  });

  it('a superadmin signs in with a password and lowers the policy, even at the verified domain', async () => {
    await t.services.accounts.createSuperadmin({ email: 'root@sso.test', password: 'correct horse battery' });
    const res = await signIn('root@sso.test');
    expect(res.status).toBe(200);
    // The password session is not a way into the organization's data: only its security settings.
    const tenant = await t.request('GET', path(orgId, '/members'), { as: { cookie: res.cookie! } });
    expect(tenant.status).toBe(403);
    expect(tenant.body.code).toBe('SSO_REQUIRED');
    const lowered = await setSecurity(t, orgId, { cookie: res.cookie! }, { authRequired: 'any' });
    expect(lowered.status).toBe(200);
    const events = await t.deps.db.selectFrom('audit_events').select(['actor_user_id', 'metadata']).where('organization_id', '=', orgId).where('action', '=', 'organization.security_updated').orderBy('id', 'desc').executeTakeFirstOrThrow();
    expect(events.actor_user_id).toBe(res.body.data.user.id);
  });

  it('refuses to disable the SSO connection while SSO is required (409), so nobody is locked out', async () => {
    expect((await setSecurity(t, orgId, { apiKey: ownerKey }, { authRequired: 'sso' })).status).toBe(200);
    const res = await t.request('PUT', path(orgId, '/settings/sso'), { apiKey: ownerKey, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, enabled: false } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('CONFLICT');
    expect(res.body.message).toMatch(/lower its sign-in policy/);
    expect((await t.request('GET', path(orgId, '/settings/sso'), { apiKey: ownerKey })).body.data.enabled).toBe(true);
  });

  it('deleting the SSO connection lowers sso to any (audit-logged), so nobody is locked out', async () => {
    const { owner: o, orgId: id } = await orgWithSso('delete-lowers');
    const key = (await createApiKey(t, o, { name: 'k' })).key;
    expect((await setSecurity(t, id, o, { authRequired: 'sso' })).status).toBe(200);
    expect((await t.request('DELETE', path(id, '/settings/sso'), { apiKey: key })).status).toBe(200);
    expect((await t.request('GET', path(id, '/settings/security'), { apiKey: key })).body.data.authRequired).toBe('any');
    // One word for a policy change, whoever made it (SPEC §12 "Stable words are typed").
    const log = (await t.request('GET', path(id, '/audit-log?limit=100'), { apiKey: key })).body.data.items as { action: string; metadata: Record<string, unknown> }[];
    const lowered = log.filter((e) => e.action === 'organization.security_updated');
    expect(lowered[0]?.metadata).toMatchObject({ from: { authRequired: 'sso' }, to: { authRequired: 'any' }, direction: 'lowered', reason: 'sso_connection_deleted' });
    expect(log.some((e) => e.action.startsWith('security.'))).toBe(false);
  });
});

describe('authRequired: mfa and requireMfa', () => {
  for (const policy of [{ authRequired: 'mfa' }, { authRequired: 'any', requireMfa: true }] as const) {
    describe(JSON.stringify(policy), () => {
      let orgId: string;
      let owner: TestUser;
      let ownerKey: string;
      let withFactor: TestUser;
      let completed: TestUser;
      const slug = 'authRequired' in policy && policy.authRequired === 'mfa' ? 'mfa-org' : 'require-mfa-org';

      beforeAll(async () => {
        owner = await t.signUp(`owner@${slug}.example`);
        orgId = await createOrg(t, owner, slug, slug);
        await configureOidc(t, owner, orgId, idp);
        ownerKey = (await createApiKey(t, owner, { name: 'k' })).key;
        withFactor = await t.signUp(`factor@${slug}.example`);
        completed = await t.signUp(`complete@${slug}.example`);
        for (const m of [withFactor, completed]) {
          await addMember(t, owner, orgId, m, 'member');
          await seedConfirmedFactor(t, m.id);
        }
        expect((await setSecurity(t, orgId, { apiKey: ownerKey }, policy)).status).toBe(200);
      });

      it('a member without any factor gets 403 MFA_ENROLLMENT_REQUIRED', async () => {
        const res = await t.request('GET', path(orgId), { as: owner });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('MFA_ENROLLMENT_REQUIRED');
      });

      it('a member with a factor but a session without completed MFA gets 403 MFA_REQUIRED', async () => {
        const res = await t.request('GET', path(orgId), { as: withFactor });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('MFA_REQUIRED');
      });

      it('a session whose MFA is complete passes', async () => {
        const m = completed;
        const session = (await t.request('GET', '/api/auth/session', { as: m })).body.data.session;
        await t.services.sessions.markMfaComplete(t.deps.db, session.id);
        expect((await t.request('GET', path(orgId), { as: m })).status).toBe(200);
      });

      it("an SSO session of this organization counts as MFA-complete (the IdP is the authority), until its connection is disabled", async () => {
        await seedVerifiedDomain(t, orgId, slug === 'mfa-org' ? 'mfa.test' : 'require-mfa.test');
        if (slug !== 'mfa-org') return; // one IdP user is enough to prove the rule once
        const cookie = await ssoCookie(slug, 'mfa-member');
        expect((await t.request('GET', path(orgId), { as: { cookie } })).status).toBe(200);
        const disabled = await t.request('PUT', path(orgId, '/settings/sso'), { apiKey: ownerKey, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, enabled: false } });
        expect(disabled.status).toBe(200);
        const after = await t.request('GET', path(orgId), { as: { cookie } });
        expect(after.status).toBe(403);
        expect(after.body.code).toBe('MFA_ENROLLMENT_REQUIRED');
        const res = await t.request('PUT', path(orgId, '/settings/sso'), { apiKey: ownerKey, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret } });
        expect(res.status).toBe(200);
        expect((await t.request('GET', path(orgId), { as: { cookie } })).status).toBe(200);
      });

      it('API keys are exempt', async () => {
        expect((await t.request('GET', path(orgId), { apiKey: ownerKey })).status).toBe(200);
      });

      it('an organization without the policy is unaffected for the same session', async () => {
        const plainOrg = await createOrg(t, owner, `${slug} plain`, `${slug}-plain`);
        expect((await t.request('GET', path(plainOrg), { as: owner })).status).toBe(200);
      });
    });
  }
});

describe('a user with a confirmed factor always gets a second step', () => {
  it('password sign-in creates a pending session that reaches only the session, MFA and sign-out endpoints', async () => {
    const u = await t.signUp('two-step@example.org');
    await seedConfirmedFactor(t, u.id);
    const res = await signIn(u.email);
    expect(res.status).toBe(200);
    expect(res.body.data.session.mfa).toBe('pending');
    const cookie = res.cookie!;
    const session = await t.request('GET', '/api/auth/session', { as: { cookie } });
    expect(session.status).toBe(200);
    expect(session.body.data.session.mfa).toBe('pending');
    for (const [method, p] of [['GET', '/api/user/me'], ['GET', '/api/user/organizations'], ['GET', '/api/user/sessions'], ['POST', '/api/user/api-keys']] as const) {
      const r = await t.request(method, p, { as: { cookie }, ...(method === 'POST' ? { body: { name: 'x' } } : {}) });
      expect(r.status, `${method} ${p}`).toBe(403);
      expect(r.body.code).toBe('MFA_REQUIRED');
    }
    // Starting over another way stays possible: the anonymous sign-in entry points never use the pending session's rights.
    expect((await t.request('POST', '/api/auth/sign-in/discover', { as: { cookie }, body: { email: u.email } })).status).toBe(200);
    // The MFA endpoints are reachable (the verify answer itself is the MFA feature's business).
    const verify = await t.request('POST', '/api/auth/mfa/verify', { as: { cookie }, body: { code: '000000' } });
    expect(verify.body.code).not.toBe('MFA_REQUIRED');
    expect((await t.request('POST', '/api/auth/sign-out', { as: { cookie } })).status).toBe(200);
  });

  it('a user without a factor gets a session with mfa none', async () => {
    const u = await t.signUp('one-step@example.org');
    expect((await signIn(u.email)).body.data.session.mfa).toBe('none');
  });
});

describe('home-realm discovery', () => {
  const discover = (email: string) => t.request('POST', '/api/auth/sign-in/discover', { body: { email } });

  it("sends an email at a verified domain with enabled SSO to the organization's SSO, with login_hint", async () => {
    await orgWithSso('discover-org', 'discover.test');
    const res = await discover('Jane@Discover.test');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({
      method: 'sso',
      url: `/api/auth/sso/discover-org/login?login_hint=${encodeURIComponent('jane@discover.test')}`,
      organization: { name: 'discover-org', slug: 'discover-org' },
      ssoRequired: false,
    });
  });

  it('offers password and magic link for other emails, for unverified domains and without enabled SSO', async () => {
    const owner = await t.signUp('owner@pending-domain.example');
    const orgId = await createOrg(t, owner, 'Pending domain', 'pending-domain');
    await configureOidc(t, owner, orgId, idp);
    const now = t.clock.now().toISOString();
    await t.deps.db.insertInto('domains').values({ id: '01JPENDINGDOMA1N000000000A', organization_id: orgId, domain: 'pending.test', status: 'pending', verification_token: 'x', verified_at: null, last_checked_at: null, auto_join: 0, require_approval: 0, join_role: 'member', created_at: now, updated_at: now }).execute();
    const noSso = await t.signUp('owner@nosso-domain.example');
    const noSsoOrg = await createOrg(t, noSso, 'No SSO domain', 'nosso-domain');
    await seedVerifiedDomain(t, noSsoOrg, 'nosso.test');
    const disabled = await orgWithSso('disabled-sso', 'disabled.test');
    await configureOidc(t, disabled.owner, disabled.orgId, idp, { enabled: false });
    for (const email of ['a@pending.test', 'a@nosso.test', 'a@disabled.test', 'a@nowhere.example']) {
      const res = await discover(email);
      expect(res.status, email).toBe(200);
      expect(res.body.data, email).toEqual({ method: 'password', methods: ['password', 'magic_link'] });
    }
  });

  it('validates the email', async () => {
    expect((await discover('not an email')).status).toBe(400);
  });
});

describe('auto-join (SPEC §7)', () => {
  it('a user with a verified email at an auto-join domain becomes a member with the domain role at sign-in', async () => {
    const owner = await t.signUp('owner@autojoin.example');
    const orgId = await createOrg(t, owner, 'Auto', 'auto');
    await seedVerifiedDomain(t, orgId, 'auto.test', { autoJoin: true, role: 'admin' });
    const u = await t.signUp('worker@auto.test');
    expect((await t.request('GET', '/api/user/organizations', { as: u })).body.data.items).toEqual([]); // unverified email: nothing yet
    expect((await signIn(u.email)).status).toBe(200);
    expect((await t.request('GET', '/api/user/organizations', { as: u })).body.data.items).toEqual([]);
    await markEmailVerified(t, u.id);
    const res = await signIn(u.email);
    expect((await t.request('GET', '/api/user/organizations', { as: { cookie: res.cookie! } })).body.data.items).toEqual([{ id: orgId, name: 'Auto', slug: 'auto', role: 'admin' }]);
    const audit = await t.deps.db.selectFrom('audit_events').select('action').where('organization_id', '=', orgId).where('action', '=', 'member.auto_joined').execute();
    expect(audit).toHaveLength(1);
    await signIn(u.email); // a second sign-in changes nothing
    expect(await t.deps.db.selectFrom('members').select('user_id').where('organization_id', '=', orgId).execute()).toHaveLength(2);
  });

  it('without autoJoin a verified domain does not add anyone', async () => {
    const owner = await t.signUp('owner@noauto.example');
    const orgId = await createOrg(t, owner, 'No auto', 'no-auto');
    await seedVerifiedDomain(t, orgId, 'noauto.test');
    const u = await t.signUp('worker@noauto.test');
    await markEmailVerified(t, u.id);
    await signIn(u.email);
    expect(await t.deps.db.selectFrom('members').select('user_id').where('organization_id', '=', orgId).execute()).toHaveLength(1);
  });

  it('with requireApproval a pending request is created once; admins list, approve and reject', async () => {
    const owner = await t.signUp('owner@approval.example');
    const admin = await t.signUp('admin@approval.example');
    const orgId = await createOrg(t, owner, 'Approval', 'approval');
    await addMember(t, owner, orgId, admin, 'admin');
    await seedVerifiedDomain(t, orgId, 'approval.test', { autoJoin: true, requireApproval: true, role: 'member' });
    const alice = await t.signUp('alice@approval.test');
    const bob = await t.signUp('bob@approval.test');
    for (const u of [alice, bob]) await markEmailVerified(t, u.id);
    await Promise.all([signIn(alice.email), signIn(alice.email)]);
    await signIn(alice.email);
    await signIn(bob.email);
    const list = await t.request('GET', path(orgId, '/members/requests'), { as: admin });
    expect(list.status).toBe(200);
    expect(list.body.data.items.map((r: { email: string; status: string }) => [r.email, r.status])).toEqual([['alice@approval.test', 'pending'], ['bob@approval.test', 'pending']]);
    expect(await t.deps.db.selectFrom('join_requests').select('id').where('organization_id', '=', orgId).execute()).toHaveLength(2);
    // Not a member until approved.
    expect(await t.deps.db.selectFrom('members').select('user_id').where('organization_id', '=', orgId).where('user_id', '=', alice.id).executeTakeFirst()).toBeUndefined();

    const [reqAlice, reqBob] = list.body.data.items;
    const approved = await t.request('POST', path(orgId, `/members/requests/${reqAlice.id}/approve`), { as: admin });
    expect(approved.status).toBe(200);
    expect(approved.body.data).toMatchObject({ status: 'approved', userId: alice.id, role: 'member' });
    expect((await t.request('GET', path(orgId), { as: alice })).status).toBe(200);
    const again = await t.request('POST', path(orgId, `/members/requests/${reqAlice.id}/reject`), { as: admin });
    expect(again.status).toBe(409);

    const rejected = await t.request('POST', path(orgId, `/members/requests/${reqBob.id}/reject`), { as: owner });
    expect(rejected.status).toBe(200);
    expect((await t.request('GET', path(orgId), { as: bob })).status).toBe(404);
    // A rejected user signing in again does not ask the admins a second time.
    await signIn(bob.email);
    expect(await t.deps.db.selectFrom('join_requests').select('id').where('user_id', '=', bob.id).execute()).toHaveLength(1);
    expect((await t.request('GET', path(orgId, '/members/requests'), { as: admin })).body.data.items).toEqual([]);
    const all = await t.request('GET', path(orgId, '/members/requests?status=all'), { as: admin });
    expect(all.body.data.items).toHaveLength(2);

    const actions = (await t.deps.db.selectFrom('audit_events').select('action').where('organization_id', '=', orgId).execute()).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['join_request.created', 'join_request.approved', 'join_request.rejected']));
  });

  it('a plain member cannot list or decide join requests', async () => {
    const owner = await t.signUp('owner@approval2.example');
    const m = await t.signUp('m@approval2.example');
    const orgId = await createOrg(t, owner, 'Approval 2', 'approval-2');
    await addMember(t, owner, orgId, m, 'member');
    expect((await t.request('GET', path(orgId, '/members/requests'), { as: m })).status).toBe(403);
  });

  it('an SSO login auto-joins the organization that verified the email domain (once the email is verified)', async () => {
    idp.users.set('pat-sub', { sub: 'pat-sub', email: 'pat@autojoin-sso.test', email_verified: true, name: 'Pat' });
    await orgWithSso('sso-autojoin-idp');
    const owner = await t.signUp('owner@auto-target.example');
    const target = await createOrg(t, owner, 'Auto target', 'auto-target');
    await seedVerifiedDomain(t, target, 'autojoin-sso.test', { autoJoin: true });
    // JIT creates Pat with an unverified email (the domain belongs to another organization): no auto-join.
    await ssoCookie('sso-autojoin-idp', 'pat-sub');
    const pat = await t.deps.db.selectFrom('users').selectAll().where('email', '=', 'pat@autojoin-sso.test').executeTakeFirstOrThrow();
    expect(pat.email_verified).toBe(0);
    const membership = () => t.deps.db.selectFrom('members').select('role').where('organization_id', '=', target).where('user_id', '=', pat.id).executeTakeFirst();
    expect(await membership()).toBeUndefined();
    await markEmailVerified(t, pat.id);
    await ssoCookie('sso-autojoin-idp', 'pat-sub');
    expect(await membership()).toEqual({ role: 'member' });
  });
});

describe('pre-account takeover through SSO linking', () => {
  it("linking an unverified account through the organization's IdP drops the squatter's password, sessions, keys, TOTP and other identities", async () => {
    idp.users.set('victim-sub', { sub: 'victim-sub', email: 'victim@claim.test', email_verified: true, name: 'Victim' });
    // Someone registered the victim's address before the organization verified its domain.
    const squatter = await t.signUp('victim@claim.test', 'squatter password');
    const key = await createApiKey(t, squatter, { name: 'kept for later' });
    await seedConfirmedFactor(t, squatter.id);
    await orgWithSso('claim-org', 'claim.test');
    const cookie = await ssoCookie('claim-org', 'victim-sub');
    const session = (await t.request('GET', '/api/auth/session', { as: { cookie } })).body.data;
    expect(session.user).toMatchObject({ id: squatter.id, emailVerified: true });
    expect((await t.request('GET', '/api/auth/session', { as: squatter })).status).toBe(401);
    expect((await t.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(401);
    expect((await signIn('victim@claim.test', 'squatter password')).status).toBe(401);
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', squatter.id).execute()).toEqual([]);
    const audit = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'user.email_verified').where('target_id', '=', squatter.id).executeTakeFirstOrThrow();
    expect(JSON.parse(audit.metadata!)).toMatchObject({ method: 'sso', clearedUnverifiedLogin: true, sessionsRevoked: 1, apiKeysRevoked: 1, factorsRemoved: 1 });
  });
});
