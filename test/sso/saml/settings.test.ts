import { createVerify, X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignedXml } from 'xml-crypto';
import { generateSpKeyPair } from '../../../src/sso/saml/certs.js';
import { parseUntrustedXml } from '../../../src/sso/saml/xml.js';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../../helpers/app.js';
import { acsForm, buildResponse, buildResponseXml, createTestSamlIdp, type TestSamlIdp } from '../../helpers/saml-sign.js';

/** SAML settings, SP metadata, AuthnRequests and full ACS logins against a test IdP key. */
let t: TestGatehouse;
let owner: TestUser;
let idp: TestSamlIdp;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_TRUSTED_ORIGINS: 'https://app.acme.test' } });
  owner = await t.signUp('owner@acme.test');
  idp = await createTestSamlIdp();
});
afterAll(async () => {
  await t.destroy();
});

const settingsPath = (orgId: string) => `/api/user/organizations/${orgId}/settings/sso`;
const urlsOf = (slug: string) => ({
  acsUrl: `${BASE_URL}/api/auth/sso/${slug}/saml/acs`,
  spEntityId: `${BASE_URL}/api/auth/sso/${slug}/saml/metadata`,
});

async function samlOrg(slug: string, extra: Record<string, unknown> = {}) {
  const orgId = await createOrg(t, owner, slug, slug);
  const res = await t.request('PUT', settingsPath(orgId), {
    as: owner,
    body: { provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: idp.certificatePem, ...extra },
  });
  if (res.status !== 200) throw new Error(`PUT failed ${res.status} ${res.text}`);
  return { orgId, settings: res.body.data, ...urlsOf(slug) };
}

/** Start an SP-initiated login and return the AuthnRequest ID (redirect binding). */
async function startLogin(slug: string, query = ''): Promise<{ id: string; location: URL }> {
  const res = await t.request('GET', `/api/auth/sso/${slug}/login${query}`);
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  const xml = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const id = /ID="([^"]+)"/.exec(xml)![1]!;
  return { id, location };
}

async function postAcs(slug: string, samlResponse: string, opts: { relayState?: string; json?: boolean } = {}) {
  return t.request('POST', `/api/auth/sso/${slug}/saml/acs`, {
    rawBody: acsForm(samlResponse, opts.relayState),
    origin: 'https://idp.acme.test',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(opts.json ? { accept: 'application/json' } : {}) },
  });
}

describe('SAML settings', () => {
  it('stores the SAML body, returns fingerprints (not PEMs), the SP URLs and creates the SP key pair sealed', async () => {
    const { orgId, settings } = await samlOrg('saml-settings');
    expect(settings).toMatchObject({
      protocol: 'saml', provider: 'saml', issuer: idp.entityId, idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl,
      acsUrl: `${BASE_URL}/api/auth/sso/saml-settings/saml/acs`,
      spEntityId: `${BASE_URL}/api/auth/sso/saml-settings/saml/metadata`,
      spMetadataUrl: `${BASE_URL}/api/auth/sso/saml-settings/saml/metadata`,
      loginUrl: `${BASE_URL}/api/auth/sso/saml-settings/login`,
      signAuthnRequests: false, authnRequestBinding: 'redirect', allowIdpInitiated: false, configVersion: 1, hasClientSecret: false, clientSecret: null,
    });
    expect(settings.idpCertificates).toEqual([{ fingerprintSha256: new X509Certificate(idp.certificatePem).fingerprint256, subject: expect.stringContaining('Test IdP'), notAfter: expect.any(String) }]);
    const get = await t.request('GET', settingsPath(orgId), { as: owner });
    expect(get.status).toBe(200);
    expect(get.text).not.toContain(idp.certificatePem.split('\n')[1]);
    const row = await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    expect(row.secret_enc).toMatch(/^v1\./);
    expect(row.secret_enc).not.toContain('PRIVATE KEY');
    expect(row.config).not.toContain('PRIVATE KEY');
    // The SP certificate is a parseable self-signed X.509 certificate.
    const spCert = new X509Certificate(settings.spCertificate);
    expect(spCert.verify(spCert.publicKey)).toBe(true);
    expect(spCert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);

    // A second PUT keeps the SP key pair and bumps the version.
    const again = await t.request('PUT', settingsPath(orgId), { as: owner, body: { protocol: 'saml', provider: 'okta', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: [idp.certificatePem], allowIdpInitiated: true } });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ provider: 'okta', configVersion: 2, allowIdpInitiated: true, spCertificate: settings.spCertificate, id: settings.id });
    // Another IdP: a new connection (the old one is kept as replaced), the organization's SP key pair carried over.
    const other = await createTestSamlIdp('https://other-idp.acme.test/saml');
    const moved = await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'saml', idpEntityId: other.entityId, idpSsoUrl: other.ssoUrl, idpCertificate: other.certificatePem } });
    expect(moved.status).toBe(200);
    expect(moved.body.data.id).not.toBe(settings.id);
    expect(moved.body.data).toMatchObject({ configVersion: 3, spCertificate: settings.spCertificate, idpEntityId: other.entityId });
    const rows = await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).execute();
    expect(rows.map((r) => r.status).sort()).toEqual(['active', 'replaced']);
    expect(rows.find((r) => r.status === 'replaced')!.secret_enc).toBeNull();
    const audit = JSON.stringify(await t.deps.db.selectFrom('audit_events').selectAll().where('organization_id', '=', orgId).execute());
    expect(audit).toContain('idpCertificateFingerprints');
    expect(audit).not.toContain('PRIVATE KEY');
  });

  it('accepts several certificates for a rotation, in one string or an array', async () => {
    const other = await createTestSamlIdp('https://idp2.acme.test');
    const { settings } = await samlOrg('saml-rotation', { idpCertificate: idp.certificatePem + '\n' + other.certificatePem });
    expect(settings.idpCertificates).toHaveLength(2);
  });

  it('validates the body: missing IdP fields, bad PEM, expired certificate, http SSO URL, unknown fields', async () => {
    const orgId = await createOrg(t, owner, 'saml-invalid', 'saml-invalid');
    const put = (body: Record<string, unknown>) => t.request('PUT', settingsPath(orgId), { as: owner, body });
    const missing = await put({ provider: 'saml', idpEntityId: idp.entityId });
    expect(missing.status).toBe(400);
    expect(missing.body.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['idpSsoUrl']);
    // The certificate may be omitted only to keep a saved IdP's: with none saved, it is required.
    const noCert = await put({ provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: 'https://idp.example.com/sso' });
    expect(noCert.status).toBe(400);
    expect(noCert.body.details.issues.map((i: { path: string }) => i.path)).toEqual(['idpCertificate']);
    const badPem = await put({ provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' });
    expect(badPem.status).toBe(400);
    expect(badPem.body.details.issues[0].path).toBe('idpCertificate');
    const expired = await generateSpKeyPair('expired', new Date(Date.now() - 25 * 365 * 24 * 3600 * 1000));
    const old = await put({ provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: expired.certificatePem });
    expect(old.status).toBe(400);
    expect(old.body.message).toMatch(/expired/);
    const http = await put({ provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: 'http://idp.acme.test/sso', idpCertificate: idp.certificatePem });
    expect(http.status).toBe(400);
    expect(http.body.details.issues[0].path).toBe('idpSsoUrl');
    const unknown = await put({ provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: idp.certificatePem, clientSecret: 'x' });
    expect(unknown.status).toBe(400);
    expect((await t.request('GET', settingsPath(orgId), { as: owner })).status).toBe(404);
  });

  it('reads entity ID, SSO URL and certificate from pasted IdP metadata', async () => {
    const orgId = await createOrg(t, owner, 'saml-metadata-in', 'saml-metadata-in');
    const b64 = idp.certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const metadata = `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${idp.entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${idp.ssoUrl}"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
    const res = await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'onelogin', idpMetadataXml: metadata } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, provider: 'onelogin', protocol: 'saml' });
    const doctype = await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'saml', idpMetadataXml: `<!DOCTYPE x [<!ENTITY e "x">]>${metadata}` } });
    expect(doctype.status).toBe(400);
  });

  it('the settings test checks certificate, URLs and the email source', async () => {
    const { orgId } = await samlOrg('saml-test-endpoint', { attributeMapping: { email: 'workEmail' } });
    const res = await t.request('POST', `${settingsPath(orgId)}/test`, { as: owner });
    expect(res.status).toBe(200);
    expect(res.body.data.checks.map((c: { name: string }) => c.name)).toEqual(['certificate', 'idp_entity_id', 'idp_sso_url', 'sp_urls', 'attribute_mapping']);
    expect(res.body.data.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect(res.body.data.checks[4].message).toContain('workEmail');
    // A certificate that has expired since it was saved fails the test.
    t.clock.advance(21 * 365 * 24 * 3600 * 1000);
    try {
      // (the owner's session has expired too by then: sign in again)
      const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: owner.email, password: owner.password }, ip: '127.0.9.1' });
      expect(signIn.status, signIn.text).toBe(200);
      const later = await t.request('POST', `${settingsPath(orgId)}/test`, { as: { cookie: signIn.cookie! } });
      expect(later.status).toBe(422);
      expect(later.body.code).toBe('SSO_TEST_FAILED');
      expect(later.body.details.checks[0]).toMatchObject({ name: 'certificate', ok: false });
    } finally {
      t.clock.advance(-21 * 365 * 24 * 3600 * 1000);
    }
  });
});

describe('SAML SP metadata and AuthnRequest', () => {
  it('publishes SP metadata: entity ID, POST ACS, signing and encryption certificate, WantAssertionsSigned', async () => {
    const { settings, acsUrl, spEntityId } = await samlOrg('saml-sp-metadata', { signAuthnRequests: true });
    const res = await t.request('GET', '/api/auth/sso/saml-sp-metadata/saml/metadata');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const doc = parseUntrustedXml(res.text);
    const root = doc.documentElement;
    expect(root.getAttribute('entityID')).toBe(spEntityId);
    const spsso = root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'SPSSODescriptor')[0]!;
    expect(spsso.getAttribute('WantAssertionsSigned')).toBe('true');
    expect(spsso.getAttribute('AuthnRequestsSigned')).toBe('true');
    const acs = spsso.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'AssertionConsumerService')[0]!;
    expect(acs.getAttribute('Location')).toBe(acsUrl);
    expect(acs.getAttribute('Binding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    const uses = Array.from({ length: spsso.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor').length }, (_, i) => spsso.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor')[i]!.getAttribute('use'));
    expect(uses).toEqual(['signing', 'encryption']);
    expect(res.text).toContain(settings.spCertificate.split('\n')[1]);
    expect((await t.request('GET', '/api/auth/sso/no-such-org/saml/metadata', { headers: { accept: 'application/json' } })).body.details.reason).toBe('connection_not_found');
  });

  it('sends a DEFLATE+base64 HTTP-Redirect AuthnRequest and stores a server-side flow keyed by its ID', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-redirect');
    const { id, location } = await startLogin('saml-redirect', '?returnTo=/dashboard');
    expect(location.origin + location.pathname).toBe(idp.ssoUrl);
    expect(location.searchParams.get('Signature')).toBeNull();
    const xml = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    expect(xml).toContain(`AssertionConsumerServiceURL="${acsUrl}"`);
    expect(xml).toContain(`>${spEntityId}</saml:Issuer>`);
    expect(xml).toContain(`Destination="${idp.ssoUrl}"`);
    expect(id.startsWith('_')).toBe(true);
    const flows = await t.deps.db.selectFrom('sso_flows').selectAll().where('protocol', '=', 'saml').execute();
    const flow = flows.find((f) => f.return_to === '/dashboard');
    expect(flow).toBeDefined();
    expect(flow!.browser_binding_hash).toBeNull();
    expect(JSON.stringify(flows)).not.toContain(id.slice(1));
  });

  it('signs the HTTP-Redirect AuthnRequest with RSA-SHA256, verifiable with the SP certificate', async () => {
    const { settings } = await samlOrg('saml-redirect-signed', { signAuthnRequests: true });
    const res = await t.request('GET', '/api/auth/sso/saml-redirect-signed/login');
    const location = res.headers.get('location')!;
    const url = new URL(location);
    expect(url.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    const query = location.slice(location.indexOf('?') + 1);
    const part = (k: string) => query.split('&').find((p) => p.startsWith(`${k}=`))!;
    const signedText = [part('SAMLRequest'), part('SigAlg')].join('&');
    const ok = createVerify('RSA-SHA256').update(signedText).verify(settings.spCertificate, url.searchParams.get('Signature')!, 'base64');
    expect(ok).toBe(true);
  });

  it('sends an HTTP-POST AuthnRequest as an auto-submitting form, with an enveloped signature that verifies', async () => {
    const { settings } = await samlOrg('saml-post', { signAuthnRequests: true, authnRequestBinding: 'post' });
    const res = await t.request('GET', '/api/auth/sso/saml-post/login');
    expect(res.status).toBe(200);
    expect(res.text).toContain(`action="${idp.ssoUrl}"`);
    // Submitted by our one external script; the page's policy allows no inline code and posts only to the IdP.
    expect(res.text).toContain('<script src="/assets/auto-post.js" defer></script>');
    expect(res.text).not.toMatch(/onload=|<script>/);
    expect(res.headers.get('content-security-policy')).toBe(`default-src 'none'; script-src 'self'; form-action ${new URL(idp.ssoUrl).origin}; frame-ancestors 'none'; base-uri 'none'`);
    const script = await t.request('GET', '/assets/auto-post.js');
    expect(script.status).toBe(200);
    expect(script.text).toContain('document.forms[0]?.submit()');
    const value = /name="SAMLRequest" value="([^"]+)"/.exec(res.text)![1]!;
    const xml = Buffer.from(value, 'base64').toString('utf8');
    expect(xml).toContain('<samlp:AuthnRequest');
    const doc = parseUntrustedXml(xml);
    const signature = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature')[0]!;
    const sig = new SignedXml({ publicCert: settings.spCertificate });
    sig.loadSignature(signature);
    expect(sig.checkSignature(xml)).toBe(true);
    expect(xml).toContain('rsa-sha256');
  });
});

describe('SAML ACS', () => {
  it('signs in end to end: SP-initiated, signed assertion, JIT user, session, 302 to returnTo', async () => {
    const { orgId, acsUrl, spEntityId } = await samlOrg('saml-login');
    const { id } = await startLogin('saml-login', '?returnTo=/welcome');
    const response = await buildResponse({
      idp, acsUrl, audience: spEntityId, nameId: 'okta-user-00u1', inResponseTo: id, now: t.clock.now(),
      attributes: { email: 'alice@acme.test', firstName: 'Alice', lastName: 'Example', groups: ['eng', 'admins'] },
    });
    const res = await postAcs('saml-login', response);
    expect(res.status, res.text).toBe(302);
    expect(res.headers.get('location')).toBe('/welcome');
    expect(res.cookie).toBeTruthy();
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.user).toMatchObject({ email: 'alice@acme.test', name: 'Alice Example' });
    expect(session.body.data.session).toMatchObject({ authMethod: 'sso', organizationId: orgId });
    const identity = await t.deps.db.selectFrom('sso_identities').selectAll().where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    expect(identity.subject).toBe('okta-user-00u1');
    // The same response again: replayed, and no session.
    const again = await postAcs('saml-login', response, { json: true });
    expect(again.status).toBe(400);
    expect(again.body.details.reason).toBe('replayed');
    expect(again.cookie).toBeNull();
  });

  it('signs in with an encrypted assertion (RSA-OAEP) decrypted with the SP key', async () => {
    const { acsUrl, spEntityId, settings } = await samlOrg('saml-encrypted');
    const { id } = await startLogin('saml-encrypted');
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'bob@acme.test', nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', inResponseTo: id, now: t.clock.now(), encryptTo: settings.spCertificate });
    expect(Buffer.from(response, 'base64').toString()).not.toContain('bob@acme.test');
    const res = await postAcs('saml-encrypted', response);
    expect(res.status, res.text).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.body.data.user.email).toBe('bob@acme.test');
  });

  it('accepts a signed response (assertion unsigned) and IdP-initiated login when allowed, landing on a trusted RelayState', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-idp-init', { allowIdpInitiated: true });
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'carol-1', attributes: { mail: 'carol@acme.test' }, now: t.clock.now(), sign: 'response' });
    const res = await postAcs('saml-idp-init', response, { relayState: 'https://app.acme.test/home' });
    expect(res.status, res.text).toBe(302);
    expect(res.headers.get('location')).toBe('https://app.acme.test/home');
    const untrusted = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'carol-1', now: t.clock.now(), sign: 'both' });
    const res2 = await postAcs('saml-idp-init', untrusted, { relayState: 'https://evil.test/' });
    expect(res2.status, res2.text).toBe(302);
    expect(res2.headers.get('location')).toBe('/');
  });

  it('rejects an unsolicited response when IdP-initiated login is off', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-no-idp-init');
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'x', attributes: { email: 'x@acme.test' }, now: t.clock.now() });
    const res = await postAcs('saml-no-idp-init', response, { json: true });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason: 'unsolicited_not_allowed' } });
    const html = await postAcs('saml-no-idp-init', response);
    expect(html.status).toBe(400);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.text).toContain('unsolicited_not_allowed');
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.login_failed').execute();
    expect(JSON.stringify(audit)).toContain('unsolicited_not_allowed');
  });

  it('answers a provisioning refusal with 403 and the §4.5 code; the assertion cannot be posted again', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-no-jit', { allowJitProvisioning: false });
    const { id } = await startLogin('saml-no-jit');
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'newbie', attributes: { email: 'newbie@acme.test' }, inResponseTo: id, now: t.clock.now() });
    const res = await postAcs('saml-no-jit', response, { json: true });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_USER_NOT_PROVISIONED');
    expect(res.cookie).toBeNull();
    expect((await postAcs('saml-no-jit', response, { json: true })).body.details.reason).toBe('replayed');
  });

  it('rejects a response to a request started before the settings changed (config version)', async () => {
    const { orgId, acsUrl, spEntityId } = await samlOrg('saml-config-changed');
    const { id } = await startLogin('saml-config-changed');
    const put = await t.request('PUT', settingsPath(orgId), { as: owner, body: { provider: 'saml', idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: idp.certificatePem, defaultRole: 'admin' } });
    expect(put.status).toBe(200);
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'late', attributes: { email: 'late@acme.test' }, inResponseTo: id, now: t.clock.now() });
    const res = await postAcs('saml-config-changed', response, { json: true });
    expect(res.body.details.reason).toBe('in_response_to_unknown');
  });

  it('rejects organization A’s response posted to organization B’s ACS', async () => {
    const a = await samlOrg('saml-org-a');
    const b = await samlOrg('saml-org-b', { allowIdpInitiated: true });
    const { id } = await startLogin('saml-org-a');
    const response = await buildResponse({ idp, acsUrl: a.acsUrl, audience: a.spEntityId, nameId: 'mallory', attributes: { email: 'mallory@acme.test' }, inResponseTo: id, now: t.clock.now() });
    const res = await postAcs('saml-org-b', response, { json: true });
    expect(res.status).toBe(400);
    expect(res.body.details.reason).toBe('destination_mismatch');
    // Even with Destination and Recipient made to match B, the audience and the flow are A's.
    const forB = await buildResponse({ idp, acsUrl: b.acsUrl, audience: a.spEntityId, nameId: 'mallory', inResponseTo: id, now: t.clock.now() });
    expect((await postAcs('saml-org-b', forB, { json: true })).body.details.reason).toBe('audience_mismatch');
    const flowOfA = await buildResponse({ idp, acsUrl: b.acsUrl, audience: b.spEntityId, nameId: 'mallory', inResponseTo: id, now: t.clock.now() });
    expect((await postAcs('saml-org-b', flowOfA, { json: true })).body.details.reason).toBe('in_response_to_unknown');
  });

  it('reads the NameID whole: a comment inside it does not truncate the identity', async () => {
    const { acsUrl, spEntityId, orgId } = await samlOrg('saml-nameid-comment', { allowIdpInitiated: true });
    const xml = await buildResponseXml({ idp, acsUrl, audience: spEntityId, nameId: 'victim@acme.test.evil.test', attributes: { email: 'attacker@acme.test' }, now: t.clock.now() });
    // Insert a comment after signing: exclusive c14n drops it, so the signature still verifies.
    const tampered = xml.replace('victim@acme.test.evil.test', 'victim@acme.test<!---->.evil.test');
    const res = await postAcs('saml-nameid-comment', Buffer.from(tampered).toString('base64'));
    expect(res.status, res.text).toBe(302);
    const identity = await t.deps.db.selectFrom('sso_identities').selectAll().where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    expect(identity.subject).toBe('victim@acme.test.evil.test');
  });

  it('rejects a signature made with a certificate that is not pinned, even when it is in KeyInfo', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-wrong-key', { allowIdpInitiated: true });
    const attacker = await createTestSamlIdp(idp.entityId, idp.ssoUrl);
    const response = await buildResponse({ idp: attacker, acsUrl, audience: spEntityId, nameId: 'x', attributes: { email: 'x@acme.test' }, now: t.clock.now() });
    expect(Buffer.from(response, 'base64').toString()).toContain('X509Certificate');
    const res = await postAcs('saml-wrong-key', response, { json: true });
    expect(res.body.details.reason).toBe('signature_invalid');
  });

  it('rejects an expired assertion on the frozen clock, and a response with a DOCTYPE', async () => {
    const { acsUrl, spEntityId } = await samlOrg('saml-expired', { allowIdpInitiated: true });
    const response = await buildResponse({ idp, acsUrl, audience: spEntityId, nameId: 'x', attributes: { email: 'x@acme.test' }, now: new Date(t.clock.now().getTime() - 10 * 60_000) });
    expect((await postAcs('saml-expired', response, { json: true })).body.details.reason).toBe('expired');
    const doctype = Buffer.from('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>').toString('base64');
    expect((await postAcs('saml-expired', doctype, { json: true })).body.details.reason).toBe('doctype_refused');
  });
});
