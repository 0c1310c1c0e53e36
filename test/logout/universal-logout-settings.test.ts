import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_URL, createOrg, createTestGatehouse, ENGINE, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startMockOkta, type MockOkta } from '../helpers/okta.js';
import { acsForm, buildResponse, createTestSamlIdp, type TestSamlIdp } from '../helpers/saml-sign.js';
import { byEmail, isAlive, oktaOrg, UL_URL, universalLogout } from '../helpers/universal-logout.js';

/**
 * The connection's `universalLogout` setting (SPEC §8) and a SAML app: Okta signs a SAML app's
 * Universal Logout request with the org key too, with `sub` = the app instance id — which a SAML
 * connection cannot know, so `issuer` (the Okta org URL) and `subject` are its configuration.
 */
let t: TestGatehouse;
let okta: MockOkta;
let owner: TestUser;
let samlIdp: TestSamlIdp;
const APP_INSTANCE = '0oa1samlappinstance';

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  okta = await startMockOkta({ now: () => t.clock.now() });
  owner = await t.signUp('owner@settings-admin.test');
  // Okta's SAML IdP entity ID has this shape; its SSO URL is on the org.
  samlIdp = await createTestSamlIdp('http://www.okta.com/exk1samlidp', `${okta.orgUrl}/app/acme_gatehouse_1/exk1samlidp/sso/saml`);
});
afterAll(async () => {
  await t.destroy();
  await okta.close();
});

const settingsPath = (orgId: string) => `/api/user/organizations/${orgId}/settings/sso`;

async function samlOrg(slug: string, universalLogoutSetting?: Record<string, unknown>) {
  const orgId = await createOrg(t, owner, slug, slug);
  const res = await t.request('PUT', settingsPath(orgId), {
    as: owner,
    body: {
      protocol: 'saml', provider: 'okta', idpEntityId: samlIdp.entityId, idpSsoUrl: samlIdp.ssoUrl, idpCertificate: samlIdp.certificatePem, allowIdpInitiated: true,
      ...(universalLogoutSetting ? { universalLogout: universalLogoutSetting } : {}),
    },
  });
  expect(res.status, res.text).toBe(200);
  return { orgId, slug, settings: res.body.data };
}

/** Okta posts a signed assertion for the user to the ACS (IdP-initiated, as from the Okta dashboard). */
async function samlSignIn(slug: string, nameId: string, email: string) {
  const response = await buildResponse({
    idp: samlIdp, acsUrl: `${BASE_URL}/api/auth/sso/${slug}/saml/acs`, audience: `${BASE_URL}/api/auth/sso/${slug}/saml/metadata`,
    nameId, attributes: { email }, inResponseTo: null, now: t.clock.now(),
  });
  const res = await t.request('POST', `/api/auth/sso/${slug}/saml/acs`, { rawBody: acsForm(response), origin: okta.orgUrl, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });
  expect(res.status, res.text).toBe(302);
  return { cookie: res.cookie! };
}

describe(`universalLogout setting on ${ENGINE}`, () => {
  it('round-trips through PUT and GET settings/sso, with the defaults when omitted', async () => {
    const { orgId, settings } = await oktaOrg(t, owner, okta, 'defaults');
    expect(settings.universalLogout).toEqual({ enabled: true, issuer: null, subject: null });
    expect(settings.universalLogoutUri).toBe(UL_URL);
    const put = await t.request('PUT', settingsPath(orgId), {
      as: owner,
      body: { provider: 'okta', issuerUrl: okta.customIssuer, clientId: okta.clientId, universalLogout: { enabled: false, issuer: okta.orgUrl, subject: 'custom-sub' } },
    });
    expect(put.status, put.text).toBe(200);
    const get = await t.request('GET', settingsPath(orgId), { as: owner });
    expect(get.body.data.universalLogout).toEqual({ enabled: false, issuer: okta.orgUrl, subject: 'custom-sub' });
    // SPEC §11: a PUT replaces the whole connection, so omitting it restores the defaults.
    await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'okta', issuerUrl: okta.customIssuer, clientId: okta.clientId } });
    expect((await t.request('GET', settingsPath(orgId), { as: owner })).body.data.universalLogout).toEqual({ enabled: true, issuer: null, subject: null });
  });

  it('refuses an issuer that is not a URL and unknown members', async () => {
    const { orgId } = await oktaOrg(t, owner, okta, 'bad-values');
    for (const universalLogout of [{ issuer: 'not a url' }, { subject: '' }, { enabled: 'yes' }, { audience: UL_URL }]) {
      const res = await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'okta', issuerUrl: okta.customIssuer, clientId: okta.clientId, universalLogout } });
      expect(res.status, JSON.stringify(universalLogout)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('another organization\'s admin cannot read or change it (tenant isolation of settings/sso)', async () => {
    const { orgId } = await oktaOrg(t, owner, okta, 'isolated');
    const other = await t.signUp('admin@other-tenant.test');
    await createOrg(t, other, 'Other', 'other-tenant');
    expect((await t.request('GET', settingsPath(orgId), { as: other })).status).toBe(404);
    const put = await t.request('PUT', settingsPath(orgId), { as: other, body: { provider: 'okta', issuerUrl: okta.customIssuer, clientId: okta.clientId, universalLogout: { enabled: false } } });
    expect(put.status).toBe(404);
    expect((await t.request('GET', settingsPath(orgId), { as: owner })).body.data.universalLogout.enabled).toBe(true);
  });
});

describe(`a SAML app (Okta) on ${ENGINE}`, () => {
  it('with issuer (the Okta org) and subject (the app instance id) configured, Okta ends the SAML sessions: email and iss_sub', async () => {
    const org = await samlOrg('saml-ul', { issuer: okta.orgUrl, subject: APP_INSTANCE });
    expect(org.settings.universalLogout).toEqual({ enabled: true, issuer: okta.orgUrl, subject: APP_INSTANCE });
    const first = await samlSignIn(org.slug, '00usaml1', 'sam@sam-home.test');
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL, { claims: { sub: APP_INSTANCE } }), byEmail('sam@sam-home.test'));
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, first)).toBe(false);

    // iss_sub for SAML: the IdP entity ID and the NameID.
    const second = await samlSignIn(org.slug, '00usaml1', 'sam@sam-home.test');
    const bySub = await universalLogout(t, await okta.universalLogoutToken(UL_URL, { claims: { sub: APP_INSTANCE } }), { sub_id: { format: 'iss_sub', iss: samlIdp.entityId, sub: '00usaml1' } });
    expect(bySub.status, bySub.text).toBe(204);
    expect(await isAlive(t, second)).toBe(false);
  });

  it('without them, no token can reach the SAML connection (the OIDC client id default does not exist for SAML)', async () => {
    const org = await samlOrg('saml-plain');
    expect(org.settings.universalLogout).toEqual({ enabled: true, issuer: null, subject: null });
    const s = await samlSignIn(org.slug, '00usaml2', 'tom@tom-home.test');
    // (APP_INSTANCE is taken by the connection above; this one's app instance id is some other 0oa…)
    for (const sub of ['0oa2plainsamlinstance', samlIdp.entityId, 'tom@tom-home.test']) {
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL, { claims: { sub } }), byEmail('tom@tom-home.test'));
      expect(res.status).toBe(401);
      expect(res.body.details.reason).toBe('no_connection');
    }
    const onlyIssuer = await samlOrg('saml-half', { issuer: okta.orgUrl });
    const s2 = await samlSignIn(onlyIssuer.slug, '00usaml3', 'ann@ann-home.test');
    expect((await universalLogout(t, await okta.universalLogoutToken(UL_URL, { claims: { sub: '' } }), byEmail('ann@ann-home.test'))).status).toBe(401);
    expect(await isAlive(t, s)).toBe(true);
    expect(await isAlive(t, s2)).toBe(true);
  });
});
