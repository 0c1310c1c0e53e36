import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acsForm, buildResponse, createTestSamlIdp, type TestSamlIdp } from '../helpers/saml-sign.js';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/*
 * SPEC §12: retired slugs (renamed or deleted organizations) cannot be taken by another
 * organization, since login URLs, the SAML ACS URL and the SP entity ID contain the slug.
 * The attack: Corp renames away from "corp"; Mallory creates an organization with the slug
 * "corp" and a SAML connection built from Corp's public IdP metadata; Corp's IdP keeps posting
 * IdP-initiated responses (and employees keep clicking old login links) to the old URLs, which
 * would now sign Corp's people into Mallory's organization.
 */
let t: TestGatehouse;
let corpOwner: TestUser;
let mallory: TestUser;
let corpIdp: TestSamlIdp;
beforeAll(async () => {
  t = await createTestGatehouse();
  corpOwner = await t.signUp('owner@corp.test');
  mallory = await t.signUp('mallory@evil.test');
  corpIdp = await createTestSamlIdp('https://idp.corp.test/saml/metadata', 'https://idp.corp.test/saml/sso');
});
afterAll(async () => {
  await t.destroy();
});

const createWithSlug = (as: TestUser, name: string, slug: string) => t.request('POST', '/api/user/organizations', { as, body: { name, slug } });
const rename = (as: TestUser, orgId: string, slug: string) => t.request('PATCH', `/api/user/organizations/${orgId}`, { as, body: { slug } });
const configureSaml = (as: TestUser, orgId: string) =>
  t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
    as,
    body: { provider: 'saml', idpEntityId: corpIdp.entityId, idpSsoUrl: corpIdp.ssoUrl, idpCertificate: corpIdp.certificatePem, allowIdpInitiated: true },
  });

/** What Corp's IdP posts, IdP-initiated, to an ACS URL it was configured with. */
async function idpInitiatedPost(slug: string, email: string) {
  const acsUrl = `http://localhost:3000/api/auth/sso/${slug}/saml/acs`;
  const audience = `http://localhost:3000/api/auth/sso/${slug}/saml/metadata`;
  const response = await buildResponse({ idp: corpIdp, acsUrl, audience, nameId: email, nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', inResponseTo: null, now: t.clock.now() });
  return t.request('POST', `/api/auth/sso/${slug}/saml/acs`, {
    rawBody: acsForm(response),
    origin: 'https://idp.corp.test',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });
}
const membersOf = async (orgId: string) => (await t.deps.db.selectFrom('members').select('user_id').where('organization_id', '=', orgId).execute()).length;

describe('retired slugs', () => {
  it("an IdP-initiated SAML response to a renamed organization's old ACS URL cannot reach a new owner, because the new owner cannot get the slug", async () => {
    const corp = await createOrg(t, corpOwner, 'Corp', 'corp');
    expect((await configureSaml(corpOwner, corp)).status).toBe(200);
    // Control: Corp's IdP signs an employee in at the current ACS URL.
    const control = await idpInitiatedPost('corp', 'alice@corp.test');
    expect(control.status, control.text).toBe(302);
    expect(control.cookie).toBeTruthy();

    expect((await rename(corpOwner, corp, 'corp-global')).status).toBe(200);
    const taken = await createWithSlug(mallory, 'Corp', 'corp');
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ code: 'CONFLICT', details: { field: 'slug' } });
    const evil = await createOrg(t, mallory, 'Evil', 'evil-inc');
    const renamed = await rename(mallory, evil, 'corp');
    expect(renamed.status).toBe(409);
    expect(renamed.body.details.field).toBe('slug');
    // Mallory copies Corp's public IdP metadata into her own organization: still no way in.
    expect((await configureSaml(mallory, evil)).status).toBe(200);
    const before = await membersOf(evil);
    const stray = await idpInitiatedPost('corp', 'bob@corp.test');
    expect(stray.body).toMatchObject({ status: 400, code: 'SSO_LOGIN_FAILED', details: { reason: 'connection_not_found' } });
    expect(stray.cookie).toBeNull();
    expect(await membersOf(evil)).toBe(before);
    expect(await t.deps.db.selectFrom('users').select('id').where('email', '=', 'bob@corp.test').execute()).toEqual([]);
  });

  it("an old login link of a renamed organization does not lead to another organization's IdP", async () => {
    const corp = await createOrg(t, corpOwner, 'Links', 'links-corp');
    expect((await configureSaml(corpOwner, corp)).status).toBe(200);
    expect((await rename(corpOwner, corp, 'links-corp-2')).status).toBe(200);
    expect((await createWithSlug(mallory, 'Links', 'links-corp')).status).toBe(409);
    const old = await t.request('GET', '/api/auth/sso/links-corp/login', { headers: { accept: 'application/json' } });
    expect(old.body).toMatchObject({ status: 400, code: 'SSO_LOGIN_FAILED', details: { reason: 'sso_not_configured' } });
    expect(old.headers.get('location')).toBeNull();
  });

  it("a deleted organization's slug cannot be taken by another organization", async () => {
    const gone = await createOrg(t, corpOwner, 'Gone', 'gone-corp');
    expect((await t.request('DELETE', `/api/user/organizations/${gone}`, { as: corpOwner })).status).toBe(200);
    expect((await createWithSlug(mallory, 'Gone', 'gone-corp')).status).toBe(409);
    // Not even by the same person with a new organization: it is another organization.
    expect((await createWithSlug(corpOwner, 'Gone again', 'gone-corp')).status).toBe(409);
    expect(await t.deps.db.selectFrom('retired_slugs').selectAll().where('slug', '=', 'gone-corp').execute()).toEqual([
      { slug: 'gone-corp', organization_id: gone, retired_at: t.clock.now().toISOString() },
    ]);
  });

  it('the organization that retired a slug may take it back, and retire it again', async () => {
    const org = await createOrg(t, corpOwner, 'Back', 'back-corp');
    expect((await rename(corpOwner, org, 'back-corp-2')).status).toBe(200);
    const back = await rename(corpOwner, org, 'back-corp');
    expect(back.status).toBe(200);
    expect(back.body.data.slug).toBe('back-corp');
    expect((await rename(corpOwner, org, 'back-corp-3')).status).toBe(200);
    expect((await createWithSlug(mallory, 'Back', 'back-corp')).status).toBe(409);
    expect((await createWithSlug(mallory, 'Back', 'back-corp-2')).status).toBe(409);
  });

  it('a generated slug skips retired ones', async () => {
    const org = await createOrg(t, corpOwner, 'Generated Name');
    const first = (await t.request('GET', `/api/user/organizations/${org}`, { as: corpOwner })).body.data.slug;
    expect(first).toBe('generated-name');
    expect((await rename(corpOwner, org, 'generated-elsewhere')).status).toBe(200);
    const res = await t.request('POST', '/api/user/organizations', { as: mallory, body: { name: 'Generated Name' } });
    expect(res.status).toBe(201);
    expect(res.body.data.slug).not.toBe('generated-name');
    expect(res.body.data.slug).toMatch(/^generated-name-[0-9a-f]{6}$/);
  });

  it('a rename racing a takeover of the slug never hands the slug to the other organization', async () => {
    for (let i = 0; i < 5; i++) {
      const slug = `race-${i}`;
      const org = await createOrg(t, corpOwner, `Race ${i}`, slug);
      const [renamed, takeover] = await Promise.all([rename(corpOwner, org, `${slug}-new`), createWithSlug(mallory, `Race ${i}`, slug)]);
      expect(renamed.status).toBe(200);
      // Either the slug was still Corp's (taken) or it had just been retired (reserved): 409 both ways.
      expect(takeover.status, takeover.text).toBe(409);
      const holders = await t.deps.db.selectFrom('organizations').select('id').where('slug', '=', slug).execute();
      expect(holders).toEqual([]);
    }
  });
});
