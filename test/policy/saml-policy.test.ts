import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { markEmailVerified, seedVerifiedDomain, setSecurity } from '../helpers/policy.js';
import { IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields } from '../helpers/saml-forge.js';

/**
 * SAML goes through the same policy, provisioning and auto-join path as OIDC (issue: "adds a
 * protocol, not a second copy"): a SAML session satisfies `authRequired: sso` and the MFA rule of
 * its organization, and a SAML login auto-joins the organization that verified the email domain.
 */
const IDP_ENTITY_ID = 'https://idp.policy.example/saml/metadata';
let t: TestGatehouse;
let owner: TestUser;
let orgId: string;
let acsUrl: string;
let spEntityId: string;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  owner = await t.signUp('owner@saml-policy.example');
  orgId = await createOrg(t, owner, 'SAML policy', 'saml-policy');
  const put = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: 'http://127.0.0.1:9/sso', idpCertificate: IDP_KEYS.cert },
  });
  expect(put.status, put.text).toBe(200);
  ({ acsUrl, spEntityId } = put.body.data);
  await seedVerifiedDomain(t, orgId, 'saml-policy.test');
});
afterAll(async () => {
  await t.destroy();
});

/** A full SP-initiated SAML login of `email` through the ACS; returns the session cookie. */
async function samlLogin(email: string): Promise<string> {
  const start = await t.request('GET', '/api/auth/sso/saml-policy/login');
  expect(start.status).toBe(302);
  const request = decodeRedirect(start.headers.get('location')!);
  const xml = forgeResponse(responseFields({ acsUrl, spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo: request.id, now: t.clock.now(), email }));
  const res = await t.request('POST', '/api/auth/sso/saml-policy/saml/acs', {
    rawBody: postForm(xml, request.relayState),
    origin: 'https://idp.policy.example',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  expect(res.status, res.text).toBe(302);
  return res.cookie!;
}

describe('SAML sessions and the sign-in policy', () => {
  it("a SAML session of this organization satisfies authRequired: sso; a password session does not", async () => {
    const key = (await createApiKey(t, owner, { name: 'k' })).key;
    expect((await setSecurity(t, orgId, { apiKey: key }, { authRequired: 'sso' })).status).toBe(200);
    const cookie = await samlLogin('jane@saml-policy.test');
    const session = (await t.request('GET', '/api/auth/session', { as: { cookie } })).body.data.session;
    expect(session).toMatchObject({ authMethod: 'sso', organizationId: orgId });
    expect((await t.request('GET', `/api/user/organizations/${orgId}`, { as: { cookie } })).status).toBe(200);
    const refused = await t.request('GET', `/api/user/organizations/${orgId}`, { as: owner });
    expect(refused.body.code).toBe('SSO_REQUIRED');
    // The verified domain is the organization's: password sign-up at it is refused.
    const signUp = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'new@saml-policy.test', password: 'correct horse battery' } });
    expect(signUp.body.code).toBe('SSO_REQUIRED');
    expect((await setSecurity(t, orgId, { apiKey: key }, { authRequired: 'mfa' })).status).toBe(200);
    // An SSO session counts as MFA-complete for its organization.
    expect((await t.request('GET', `/api/user/organizations/${orgId}`, { as: { cookie } })).status).toBe(200);
    expect((await setSecurity(t, orgId, { apiKey: key }, { authRequired: 'any' })).status).toBe(200);
  });

  it('a SAML login auto-joins the organization that verified the email domain', async () => {
    const otherOwner = await t.signUp('owner@auto-saml.example');
    const target = await createOrg(t, otherOwner, 'Auto SAML target', 'auto-saml-target');
    await seedVerifiedDomain(t, target, 'auto-saml.test', { autoJoin: true, role: 'admin' });
    await samlLogin('kim@auto-saml.test');
    const kim = await t.deps.db.selectFrom('users').selectAll().where('email', '=', 'kim@auto-saml.test').executeTakeFirstOrThrow();
    // JIT through saml-policy leaves the email unverified (auto-saml.test is not its domain): no auto-join yet.
    const membership = () => t.deps.db.selectFrom('members').select('role').where('organization_id', '=', target).where('user_id', '=', kim.id).executeTakeFirst();
    expect(await membership()).toBeUndefined();
    await markEmailVerified(t, kim.id);
    await samlLogin('kim@auto-saml.test');
    expect(await membership()).toEqual({ role: 'admin' });
  });
});
