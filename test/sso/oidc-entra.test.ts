import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startAdversarialIdp, type AdversarialIdp } from '../helpers/adversarial-idp.js';
import { seedVerifiedDomain } from '../helpers/policy.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';
import { acceptedIssuers } from '../../src/sso/oidc/id-token.js';

/**
 * Microsoft Entra ID multi-tenant issuers (SPEC §12). Entra's `/organizations/v2.0` and
 * `/common/v2.0` discovery announce the issuer `https://login.microsoftonline.com/{tenantid}/v2.0`,
 * filled from each token's own `tid`: every tenant — the attacker's own, created in minutes —
 * passes the issuer check. The adversarial IdP plays Entra here: discovery at
 * `<origin>/organizations/v2.0` announcing `<origin>/{tenantid}/v2.0`, tokens with `tid` and
 * `iss = <origin>/<tid>/v2.0`, exactly Entra's shape on loopback.
 */
const CORP_TENANT = '3f1c2a9e-8d4b-4c6a-9e2f-0a1b2c3d4e5f';
const PARTNER_TENANT = '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const ATTACKER_TENANT = 'a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4';

let t: TestGatehouse;
let entra: AdversarialIdp;
let owner: TestUser;
let orgId: string;

beforeEach(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  entra = await startAdversarialIdp({ pathPrefix: '/organizations/v2.0' });
  entra.misbehave({ entraTemplate: { tenantId: CORP_TENANT } });
  owner = await t.signUp('owner@corp.test');
  orgId = await createOrg(t, owner, 'Corp', 'corp');
});
afterEach(async () => {
  await t.destroy();
  await entra.close();
});

const put = (body: Record<string, unknown>) =>
  t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'azure', issuerUrl: entra.issuer, clientId: entra.clientId, clientSecret: entra.clientSecret, ...body } });
const login = () => ssoLogin(t, '/api/auth/sso/corp/login', (u) => entra.authorize(u), { accept: 'application/json' });
/** The attacker's tenant: a token whose tid (and so iss) is theirs, claiming the victim's email. */
const fromTenant = (tid: string) => entra.misbehave({ entraTemplate: { tenantId: tid } });

describe('allowedTenants on the settings', () => {
  it('Entra multi-tenant: a PUT without allowedTenants is refused (400 VALIDATION_FAILED naming allowedTenants), and nothing is saved', async () => {
    const res = await put({});
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.details.issues).toEqual([expect.objectContaining({ path: 'allowedTenants' })]);
    expect(res.body.message).toMatch(/multi-tenant/);
    expect(await t.deps.db.selectFrom('sso_connections').select('id').execute()).toHaveLength(0);
  });

  it('allowedTenants must be tenant ids (GUIDs): a tenant name or an empty list is refused', async () => {
    const named = await put({ allowedTenants: ['corp.onmicrosoft.com'] });
    expect(named.status).toBe(400);
    expect(named.body.details.issues[0].path).toBe('allowedTenants.0');
    const empty = await put({ allowedTenants: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.details.issues[0].path).toBe('allowedTenants');
  });

  it('is stored lower-case and shown by GET; refused on a single tenant’s issuer (it would mean nothing there)', async () => {
    const ok = await put({ allowedTenants: [CORP_TENANT.toUpperCase(), CORP_TENANT] });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data).toMatchObject({ issuer: entra.issuer.replace('/organizations/v2.0', '/{tenantid}/v2.0'), allowedTenants: [CORP_TENANT] });
    const single = await startAdversarialIdp({ pathPrefix: `/${CORP_TENANT}/v2.0` });
    try {
      const res = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'azure', issuerUrl: single.issuer, clientId: single.clientId, clientSecret: single.clientSecret, allowedTenants: [CORP_TENANT] } });
      expect(res.status).toBe(400);
      expect(res.body.details.issues[0].path).toBe('allowedTenants');
    } finally {
      await single.close();
    }
  });
});

describe('tokens from other tenants', () => {
  it("Entra multi-tenant: a token from the attacker's own tenant carrying ceo@corp.test is refused (issuer_mismatch) and never linked to the CEO's account", async () => {
    await configureOidc(t, owner, orgId, entra, { provider: 'azure', allowedTenants: [CORP_TENANT] });
    await seedVerifiedDomain(t, orgId, 'corp.test');
    const ceo = await t.signUp('ceo@corp.test');
    fromTenant(ATTACKER_TENANT);
    entra.setUser({ sub: 'attacker-sub', email: 'ceo@corp.test', email_verified: true, xms_edov: true });
    const run = await login();
    expect(run.callback!.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason: 'issuer_mismatch' } });
    expect(run.callback!.body.message).toContain(ATTACKER_TENANT);
    expect(run.callback!.cookie).toBeNull();
    expect(await t.deps.db.selectFrom('sso_identities').select('id').where('user_id', '=', ceo.id).execute()).toHaveLength(0);
    expect(await t.deps.db.selectFrom('sessions').select('id').where('auth_method', '=', 'sso').execute()).toHaveLength(0);
  });

  it('Entra multi-tenant: a token whose tid is allowed but whose iss names another tenant is refused (issuer_mismatch)', async () => {
    await configureOidc(t, owner, orgId, entra, { provider: 'azure', allowedTenants: [CORP_TENANT] });
    entra.misbehave({ idTokenClaims: (c) => ({ ...c, iss: String(c.iss).replace(CORP_TENANT, ATTACKER_TENANT) }) });
    expect((await login()).callback!.body.details.reason).toBe('issuer_mismatch');
  });

  it('tokens from each allowed tenant sign in (control)', async () => {
    await configureOidc(t, owner, orgId, entra, { provider: 'azure', allowedTenants: [CORP_TENANT, PARTNER_TENANT] });
    entra.setUser({ sub: 'corp-user', email: 'alice@corp.test', xms_edov: true });
    expect((await login()).callback!.status).toBe(302);
    fromTenant(PARTNER_TENANT);
    entra.setUser({ sub: 'partner-user', email: 'bob@partner.test', xms_edov: true });
    expect((await login()).callback!.status).toBe(302);
  });

  it('a multi-tenant connection saved before allowedTenants existed trusts no tenant until its owner lists them, and the test endpoint says why', async () => {
    await configureOidc(t, owner, orgId, entra, { provider: 'azure', allowedTenants: [CORP_TENANT] });
    const row = await t.deps.db.selectFrom('sso_connections').select(['id', 'config']).where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    const { allowedTenants: _dropped, ...legacy } = JSON.parse(row.config) as Record<string, unknown>;
    await t.deps.db.updateTable('sso_connections').set({ config: JSON.stringify(legacy) }).where('id', '=', row.id).execute();
    const run = await login();
    expect(run.callback!.body.details.reason).toBe('issuer_mismatch');
    expect(run.callback!.body.message).toMatch(/allowedTenants/);
    const test = await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner });
    expect(test.status).toBe(422);
    expect(test.body.details.checks).toContainEqual(expect.objectContaining({ name: 'allowed_tenants', ok: false }));
  });

  it('an RFC 9207 iss of a templated issuer is accepted only for an allowed tenant', () => {
    const accepts = acceptedIssuers('https://login.microsoftonline.com/{tenantid}/v2.0', [CORP_TENANT]);
    expect(accepts(`https://login.microsoftonline.com/${CORP_TENANT}/v2.0`)).toBe(true);
    expect(accepts(`https://login.microsoftonline.com/${ATTACKER_TENANT}/v2.0`)).toBe(false);
    expect(accepts('https://login.microsoftonline.com/{tenantid}/v2.0')).toBe(false);
    expect(acceptedIssuers('https://login.microsoftonline.com/{tenantid}/v2.0', null)(`https://login.microsoftonline.com/${CORP_TENANT}/v2.0`)).toBe(false);
  });
});

describe('Entra email verification for linking (xms_edov)', () => {
  async function withExistingAccount(extra: Record<string, unknown> = {}) {
    await configureOidc(t, owner, orgId, entra, { allowedTenants: [CORP_TENANT], ...extra });
    await seedVerifiedDomain(t, orgId, 'corp.test');
    return t.signUp('dana@corp.test');
  }

  it("Entra multi-tenant: an allowed tenant's token without xms_edov: true is not linked to an existing account on the verified domain (email_verified: true is not enough)", async () => {
    await withExistingAccount(); // provider "oidc": a templated issuer is Entra's whatever the provider says
    entra.setUser({ sub: 'dana-sub', email: 'dana@corp.test', email_verified: true });
    const run = await login();
    expect(run.callback!.status).toBe(403);
    expect(run.callback!.body).toMatchObject({ code: 'SSO_ACCOUNT_LINK_REQUIRED', details: { reason: 'account_link_required' } });
    expect(run.callback!.body.message).toMatch(/unverified/);
  });

  it('Entra multi-tenant: xms_edov: false is not linked either', async () => {
    await withExistingAccount({ provider: 'azure' });
    entra.setUser({ sub: 'dana-sub', email: 'dana@corp.test', xms_edov: false });
    expect((await login()).callback!.body.code).toBe('SSO_ACCOUNT_LINK_REQUIRED');
  });

  it('Entra multi-tenant: xms_edov: true (the tenant verified the domain) links the existing account (control)', async () => {
    const dana = await withExistingAccount({ provider: 'azure' });
    entra.setUser({ sub: 'dana-sub', email: 'dana@corp.test', xms_edov: true });
    const run = await login();
    expect(run.callback!.status, run.callback!.text).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: run.callback!.cookie! } });
    expect(session.body.data.user.id).toBe(dana.id);
  });

  it("Entra multi-tenant: a partner tenant's user named ceo@corp.test without xms_edov gets an unverified account, which the real CEO's sign-in (xms_edov: true) then reclaims", async () => {
    await configureOidc(t, owner, orgId, entra, { provider: 'azure', allowedTenants: [CORP_TENANT, PARTNER_TENANT] });
    await seedVerifiedDomain(t, orgId, 'corp.test');
    fromTenant(PARTNER_TENANT);
    entra.setUser({ sub: 'squatter-sub', email: 'ceo@corp.test', email_verified: true });
    const squat = await login();
    expect(squat.callback!.status, squat.callback!.text).toBe(302); // JIT: the partner tenant is allowed
    const user = () => t.deps.db.selectFrom('users').selectAll().where('email', '=', 'ceo@corp.test').executeTakeFirstOrThrow();
    expect((await user()).email_verified).toBe(0); // not proven by the IdP: xms_edov is not true

    fromTenant(CORP_TENANT);
    entra.setUser({ sub: 'ceo-sub', email: 'ceo@corp.test', xms_edov: true });
    const ceo = await login();
    expect(ceo.callback!.status, ceo.callback!.text).toBe(302);
    expect((await user()).email_verified).toBe(1);
    // The claim removed what the squatter had: their identity and their session.
    const identities = await t.deps.db.selectFrom('sso_identities').select('subject').where('user_id', '=', (await user()).id).execute();
    expect(identities.map((i) => i.subject)).toEqual(['ceo-sub']);
    expect((await t.request('GET', '/api/auth/session', { as: { cookie: squat.callback!.cookie! } })).status).toBe(401);
  });

  it('single-tenant Entra: the email links without xms_edov, but xms_edov: false is honoured as unverified', async () => {
    const single = await startAdversarialIdp({ pathPrefix: `/${CORP_TENANT}/v2.0` });
    try {
      await configureOidc(t, owner, orgId, single, { provider: 'azure' });
      await seedVerifiedDomain(t, orgId, 'corp.test');
      await t.signUp('erin@corp.test');
      single.setUser({ sub: 'erin-sub', email: 'erin@corp.test', tid: CORP_TENANT, xms_edov: false });
      const refused = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => single.authorize(u), { accept: 'application/json' });
      expect(refused.callback!.body.code).toBe('SSO_ACCOUNT_LINK_REQUIRED');
      single.setUser({ sub: 'erin-sub', email: 'erin@corp.test', tid: CORP_TENANT });
      const linked = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => single.authorize(u), { accept: 'application/json' });
      expect(linked.callback!.status, linked.callback!.text).toBe(302);
    } finally {
      await single.close();
    }
  });
});
