import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestResponse, type TestUser } from '../helpers/app.js';
import { ALG, ATTACKER_KEYS, IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields, samlId, withDoctype } from '../helpers/saml-forge.js';
import { buildLogoutRequest, buildLogoutResponse, decodeRedirectMessage, logoutRequestFields, postBody, redirectQuery, type LogoutRequestFields } from '../helpers/saml-logout.js';

/**
 * SAML Single Logout at /api/auth/sso/{slug}/saml/slo, in process: IdP-initiated LogoutRequests
 * (Redirect and POST bindings) and the LogoutResponse to an SP-initiated one. The IdP is the
 * saml-forge test key pair (pinned); the attacker signs with a key that is not. Security tests are
 * named after the attack; each checks that the victim's session is still alive afterwards.
 * Nothing leaves the process: the IdP's URLs are a loopback port nobody listens on, only ever
 * redirect targets.
 */
const IDP_ENTITY_ID = 'https://idp.customer.example/saml/metadata';
const IDP_SSO_URL = 'http://127.0.0.1:9/saml/sso';
const IDP_SLO_URL = 'http://127.0.0.1:9/saml/slo';
const IDP_ORIGIN = 'https://idp.customer.example';
const ALICE = 'alice@customer.example';
const BOB = 'bob@customer.example';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

let t: TestGatehouse;
let owner: TestUser;
let orgId: string;
const SP = { slug: 'acme', acsUrl: `${BASE_URL}/api/auth/sso/acme/saml/acs`, sloUrl: `${BASE_URL}/api/auth/sso/acme/saml/slo`, spEntityId: `${BASE_URL}/api/auth/sso/acme/saml/metadata` };
let spCertificate = '';

async function configure(slug: string, org: string, extra: Record<string, unknown> = {}, cert = IDP_KEYS.cert) {
  const put = await t.request('PUT', `/api/user/organizations/${org}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificate: cert, idpSloUrl: IDP_SLO_URL, ...extra },
  });
  if (put.status !== 200) throw new Error(`PUT settings/sso: ${put.status} ${put.text}`);
  return put.body.data;
}

beforeEach(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  owner = await t.signUp('owner@saas.example');
  orgId = await createOrg(t, owner, 'Acme', 'acme');
  spCertificate = (await configure('acme', orgId)).spCertificate;
});
afterEach(async () => {
  await t.destroy();
});

/** An SP-initiated SSO login of `email` at `slug` whose AuthnStatement carries `sessionIndex`. */
async function signIn(email: string, sessionIndex = samlId('_idpsession'), slug = SP.slug, keys = IDP_KEYS) {
  const start = await t.request('GET', `/api/auth/sso/${slug}/login`);
  expect(start.status, start.text).toBe(302);
  const req = decodeRedirect(start.headers.get('location')!);
  const root = `${BASE_URL}/api/auth/sso/${slug}/saml`;
  const xml = forgeResponse(responseFields({ acsUrl: `${root}/acs`, spEntityId: `${root}/metadata`, idpEntityId: IDP_ENTITY_ID, inResponseTo: req.id, now: t.clock.now(), email }, { sessionIndex }), { keys });
  const res = await t.request('POST', `/api/auth/sso/${slug}/saml/acs`, { rawBody: postForm(xml, req.relayState), origin: IDP_ORIGIN, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  expect(res.status, res.text).toBe(302);
  expect(res.cookie).toBeTruthy();
  const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
  return { cookie: res.cookie!, sessionId: session.body.data.session.id as string, sessionIndex };
}

const alive = async (s: { cookie: string }) => (await t.request('GET', '/api/auth/session', { as: { cookie: s.cookie } })).status === 200;
const request = (f: Partial<LogoutRequestFields> & { nameId: string }) => logoutRequestFields({ idpEntityId: IDP_ENTITY_ID, sloUrl: SP.sloUrl, now: t.clock.now(), nameId: f.nameId }, f);
const getSlo = (query: string, slug = SP.slug): Promise<TestResponse> => t.request('GET', `/api/auth/sso/${slug}/saml/slo?${query}`, { headers: { accept: 'application/json' } });
const postSlo = (body: string, slug = SP.slug): Promise<TestResponse> =>
  t.request('POST', `/api/auth/sso/${slug}/saml/slo`, { rawBody: body, origin: IDP_ORIGIN, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });

/** Refused without a LogoutResponse (the sender is not authenticated): 400 with the reason. */
function expectRejected(res: TestResponse, reason: string) {
  expect(res.status, res.text).toBe(400);
  expect(res.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason } });
}

/** Answered with a signed LogoutResponse that carries a failure status (the IdP is authenticated). */
async function expectAnsweredFailure(res: TestResponse, inResponseTo: string, reason: string) {
  expect(res.status, res.text).toBe(302);
  const m = decodeRedirectMessage(res.headers.get('location')!);
  expect(m.location).toBe(IDP_SLO_URL);
  expect(m.verifies(spCertificate)).toBe(true);
  expect(m.xml).toContain(`InResponseTo="${inResponseTo}"`);
  expect(m.xml).toContain('urn:oasis:names:tc:SAML:2.0:status:Requester');
  expect(m.xml).toContain(`<samlp:StatusMessage>${reason}</samlp:StatusMessage>`);
  const audits = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'sso.single_logout_failed').execute();
  expect(audits.some((a) => a.metadata?.includes(`"reason":"${reason}"`))).toBe(true);
}

function expectAnsweredSuccess(res: TestResponse, inResponseTo: string, relayState?: string) {
  expect(res.status, res.text).toBe(302);
  const m = decodeRedirectMessage(res.headers.get('location')!);
  expect(m.kind).toBe('SAMLResponse');
  expect(m.location).toBe(IDP_SLO_URL);
  expect(m.verifies(spCertificate), 'signed with the SP key').toBe(true);
  expect(m.xml).toContain(`InResponseTo="${inResponseTo}"`);
  expect(m.xml).toContain(`Destination="${IDP_SLO_URL}"`);
  expect(m.xml).toContain(`<saml:Issuer>${SP.spEntityId}</saml:Issuer>`);
  expect(m.xml).toContain(`Value="${SUCCESS}"`);
  if (relayState !== undefined) expect(m.relayState).toBe(relayState);
}

describe('the ACS keeps the IdP session on the Gatehouse session', () => {
  it('stores identity_id, the SessionIndex as idp_session_id and the sealed NameID hint', async () => {
    const s = await signIn(ALICE, '_sess-alice-1');
    const row = await t.deps.db.selectFrom('sessions').select(['identity_id', 'idp_session_id', 'idp_logout_enc']).where('id', '=', s.sessionId).executeTakeFirstOrThrow();
    const identity = await t.deps.db.selectFrom('sso_identities').select(['id', 'subject']).where('subject', '=', ALICE).executeTakeFirstOrThrow();
    expect(row.identity_id).toBe(identity.id);
    expect(row.idp_session_id).toBe('_sess-alice-1');
    expect(row.idp_logout_enc).toBeTruthy();
    expect(row.idp_logout_enc).not.toContain(ALICE);
  });
});

describe('IdP-initiated Single Logout', () => {
  it('ends the session a signed Redirect LogoutRequest names (SessionIndex) and answers a signed LogoutResponse with the RelayState', async () => {
    const a1 = await signIn(ALICE);
    const a2 = await signIn(ALICE);
    const f = request({ nameId: ALICE, sessionIndexes: [a1.sessionIndex] });
    const res = await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f), { relayState: 'idp-state-1' }));
    expectAnsweredSuccess(res, f.id, 'idp-state-1');
    expect(await alive(a1)).toBe(false);
    expect(await alive(a2), 'the same user’s other IdP session stays').toBe(true);
    const revoked = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'session.revoked').execute();
    expect(revoked.filter((r) => r.metadata?.includes('"reason":"saml_single_logout"'))).toHaveLength(1);
  });

  it('ends every session of the identity when the LogoutRequest has no SessionIndex (POST binding)', async () => {
    const a1 = await signIn(ALICE);
    const a2 = await signIn(ALICE);
    const b = await signIn(BOB);
    const f = request({ nameId: ALICE });
    expectAnsweredSuccess(await postSlo(postBody('SAMLRequest', buildLogoutRequest(f), f.id)), f.id);
    expect(await alive(a1)).toBe(false);
    expect(await alive(a2)).toBe(false);
    expect(await alive(b)).toBe(true);
  });

  it('answers Success when the identity has no live session left (already signed out here)', async () => {
    const a = await signIn(ALICE);
    await t.request('POST', '/api/auth/sign-out', { as: { cookie: a.cookie } });
    const f = request({ nameId: ALICE, sessionIndexes: [a.sessionIndex] });
    expectAnsweredSuccess(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id);
  });
});

describe('attacks on the IdP-initiated Single Logout service', () => {
  it('rejects an unsigned Redirect LogoutRequest (node-saml alone would accept it)', async () => {
    const a = await signIn(ALICE);
    expectRejected(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(request({ nameId: ALICE })), { keys: null })), 'signature_missing');
    expect(await alive(a)).toBe(true);
  });

  it('rejects an unsigned POST LogoutRequest', async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE });
    expectRejected(await postSlo(postBody('SAMLRequest', buildLogoutRequest(f), f.id, null)), 'signature_missing');
    expect(await alive(a)).toBe(true);
  });

  it('rejects a Redirect LogoutRequest forged with a key that is not pinned', async () => {
    const a = await signIn(ALICE);
    expectRejected(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(request({ nameId: ALICE })), { keys: ATTACKER_KEYS })), 'signature_invalid');
    expect(await alive(a)).toBe(true);
  });

  it('rejects a POST LogoutRequest forged with a key that is not pinned, even with its certificate in KeyInfo', async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE });
    expectRejected(await postSlo(postBody('SAMLRequest', buildLogoutRequest(f), f.id, ATTACKER_KEYS)), 'signature_invalid');
    expect(await alive(a)).toBe(true);
  });

  it('rejects a genuine Redirect signature moved onto another NameID (tampered SAMLRequest)', async () => {
    const a = await signIn(ALICE);
    const genuine = redirectQuery('SAMLRequest', buildLogoutRequest(request({ nameId: BOB })));
    const forged = redirectQuery('SAMLRequest', buildLogoutRequest(request({ nameId: ALICE })), { keys: null });
    const sig = genuine.slice(genuine.indexOf('&SigAlg='));
    expectRejected(await getSlo(`${forged}${sig}`), 'signature_invalid');
    expect(await alive(a)).toBe(true);
  });

  it('rejects a RSA-SHA1 signed Redirect LogoutRequest', async () => {
    const a = await signIn(ALICE);
    expectRejected(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(request({ nameId: ALICE })), { sigAlg: ALG.rsaSha1 })), 'algorithm_refused');
    expect(await alive(a)).toBe(true);
  });

  it('rejects a POST LogoutRequest with a DOCTYPE (entity expansion)', async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE });
    const body = new URLSearchParams({ SAMLRequest: Buffer.from(withDoctype(buildLogoutRequest(f))).toString('base64') }).toString();
    expectRejected(await postSlo(body), 'doctype_refused');
    expect(await alive(a)).toBe(true);
  });

  it('rejects an oversized POST LogoutRequest unread', async () => {
    const res = await postSlo(`SAMLRequest=${'A'.repeat(70 * 1024)}`);
    expectRejected(res, 'response_too_large');
  });

  it('refuses a LogoutRequest addressed to another SP (wrong Destination), answering Requester', async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE, destination: 'https://other-sp.example/slo' });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id, 'destination_mismatch');
    expect(await alive(a)).toBe(true);
  });

  it('refuses a LogoutRequest from another issuer signed with the pinned key (wrong Issuer)', async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE, issuer: 'https://other-idp.example' });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id, 'issuer_mismatch');
    expect(await alive(a)).toBe(true);
  });

  it('refuses a replayed LogoutRequest ID (the second one ends nothing)', async () => {
    const a1 = await signIn(ALICE);
    const f = request({ nameId: ALICE });
    const query = redirectQuery('SAMLRequest', buildLogoutRequest(f));
    expectAnsweredSuccess(await getSlo(query), f.id);
    const a2 = await signIn(ALICE);
    await expectAnsweredFailure(await getSlo(query), f.id, 'replayed');
    expect(await alive(a1)).toBe(false);
    expect(await alive(a2), 'the session opened after the first request stays').toBe(true);
  });

  it('refuses an expired LogoutRequest (NotOnOrAfter passed) and a stale one (IssueInstant an hour old)', async () => {
    const a = await signIn(ALICE);
    const now = t.clock.now().getTime();
    const expired = request({ nameId: ALICE, issueInstant: new Date(now - 3 * 60_000), notOnOrAfter: new Date(now - 2 * 60_000) });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(expired))), expired.id, 'expired');
    const stale = request({ nameId: ALICE, issueInstant: new Date(now - 3_600_000), notOnOrAfter: null });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(stale))), stale.id, 'expired');
    expect(await alive(a)).toBe(true);
  });

  it("refuses a LogoutRequest naming a NameID that is no identity of this connection", async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: 'mallory@customer.example' });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id, 'nameid_unknown');
    expect(await alive(a)).toBe(true);
  });

  it("refuses a LogoutRequest whose NameID Format differs from the one the user signed in with", async () => {
    const a = await signIn(ALICE);
    const f = request({ nameId: ALICE, nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent' });
    await expectAnsweredFailure(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id, 'nameid_unknown');
    expect(await alive(a)).toBe(true);
  });

  it("does not end another user's session: Bob's NameID with Alice's SessionIndex ends neither", async () => {
    const a = await signIn(ALICE);
    const b = await signIn(BOB);
    const f = request({ nameId: BOB, sessionIndexes: [a.sessionIndex] });
    expectAnsweredSuccess(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id);
    expect(await alive(a)).toBe(true);
    expect(await alive(b)).toBe(true);
  });

  it('does not end another session of the same connection: a SessionIndex of Bob’s session under Alice’s NameID', async () => {
    const a = await signIn(ALICE);
    const b = await signIn(BOB);
    const f = request({ nameId: ALICE, sessionIndexes: [b.sessionIndex] });
    expectAnsweredSuccess(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f))), f.id);
    expect(await alive(a)).toBe(true);
    expect(await alive(b)).toBe(true);
  });

  it("organization Evil's IdP cannot end a session of Corp's user: a LogoutRequest valid at Evil's /saml/slo with the Corp user's NameID", async () => {
    const corp = await signIn(ALICE);
    // Evil: its own organization and connection, pinning the attacker's certificate, same IdP entity ID.
    const evilOwner = await t.signUp('owner@evil.example');
    const evilOrg = await createOrg(t, evilOwner, 'Evil', 'evil');
    const put = await t.request('PUT', `/api/user/organizations/${evilOrg}/settings/sso`, {
      as: evilOwner,
      body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificate: ATTACKER_KEYS.cert, idpSloUrl: IDP_SLO_URL },
    });
    expect(put.status, put.text).toBe(200);
    const evilSlo = `${BASE_URL}/api/auth/sso/evil/saml/slo`;
    const f = logoutRequestFields({ idpEntityId: IDP_ENTITY_ID, sloUrl: evilSlo, now: t.clock.now(), nameId: ALICE, sessionIndex: corp.sessionIndex });
    const res = await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f), { keys: ATTACKER_KEYS }), 'evil');
    expect(res.status).toBe(302);
    expect(decodeRedirectMessage(res.headers.get('location')!).xml).toContain('<samlp:StatusMessage>nameid_unknown</samlp:StatusMessage>');
    expect(await alive(corp)).toBe(true);
    // And the same message at Corp's endpoint: not signed by Corp's pinned IdP key.
    const f2 = { ...f, id: samlId('_lr'), destination: SP.sloUrl };
    expectRejected(await getSlo(redirectQuery('SAMLRequest', buildLogoutRequest(f2), { keys: ATTACKER_KEYS })), 'signature_invalid');
    expect(await alive(corp)).toBe(true);
  });
});

describe('SP-initiated Single Logout (signOutOfIdp)', () => {
  async function signOutOfIdp() {
    await configure('acme', orgId, { signOutOfIdp: true });
    const a = await signIn(ALICE, '_sess-for-slo');
    const out = await t.request('POST', '/api/auth/sign-out', { as: { cookie: a.cookie } });
    expect(out.status, out.text).toBe(200);
    const m = decodeRedirectMessage(out.body.data.idpLogoutUrl);
    const id = /ID="([^"]+)"/.exec(m.xml)![1]!;
    return { a, m, id };
  }
  const answer = (inResponseTo: string | null, overrides: { status?: string; destination?: string; issuer?: string; keys?: typeof IDP_KEYS | null; id?: string } = {}) =>
    redirectQuery('SAMLResponse', buildLogoutResponse({
      id: overrides.id ?? samlId('_resp'), issueInstant: t.clock.now(), destination: overrides.destination ?? SP.sloUrl, issuer: overrides.issuer ?? IDP_ENTITY_ID, inResponseTo, status: overrides.status ?? SUCCESS,
    }), { keys: overrides.keys === undefined ? IDP_KEYS : overrides.keys });

  it('sign-out answers a LogoutRequest to idpSloUrl signed with the SP key, with the NameID, SessionIndex, Issuer and Destination', async () => {
    const { a, m } = await signOutOfIdp();
    expect(m.location).toBe(IDP_SLO_URL);
    expect(m.kind).toBe('SAMLRequest');
    expect(m.verifies(spCertificate)).toBe(true);
    expect(m.verifies(IDP_KEYS.cert)).toBe(false);
    expect(m.xml).toContain(`Destination="${IDP_SLO_URL}"`);
    expect(m.xml).toContain(`<saml:Issuer>${SP.spEntityId}</saml:Issuer>`);
    expect(m.xml).toContain(`<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${ALICE}</saml:NameID>`);
    expect(m.xml).toContain('<samlp:SessionIndex>_sess-for-slo</samlp:SessionIndex>');
    expect(await alive(a)).toBe(false);
  });

  it("accepts the IdP's signed LogoutResponse once and redirects to the signed-out page", async () => {
    const { id } = await signOutOfIdp();
    const res = await getSlo(answer(id));
    expect(res.status, res.text).toBe(302);
    expect(res.headers.get('location')).toBe(`${BASE_URL}/signed-out`);
    expectRejected(await getSlo(answer(id)), 'in_response_to_unknown');
  });

  it("accepts the IdP's LogoutResponse over the HTTP-POST binding (enveloped signature)", async () => {
    const { id } = await signOutOfIdp();
    const responseId = samlId('_resp');
    const xml = buildLogoutResponse({ id: responseId, issueInstant: t.clock.now(), destination: SP.sloUrl, issuer: IDP_ENTITY_ID, inResponseTo: id, status: SUCCESS });
    expectRejected(await postSlo(postBody('SAMLResponse', xml, responseId, null)), 'signature_missing');
    const res = await postSlo(postBody('SAMLResponse', xml, responseId));
    expect(res.status, res.text).toBe(302);
    expect(res.headers.get('location')).toBe(`${BASE_URL}/signed-out`);
  });

  it('rejects a LogoutResponse answering no request Gatehouse sent', async () => {
    await signOutOfIdp();
    expectRejected(await getSlo(answer('_never-sent')), 'in_response_to_unknown');
  });

  it('rejects an unsigned or forged LogoutResponse, one to another Destination, and a failure status', async () => {
    const { id } = await signOutOfIdp();
    expectRejected(await getSlo(answer(id, { keys: null })), 'signature_missing');
    expectRejected(await getSlo(answer(id, { keys: ATTACKER_KEYS })), 'signature_invalid');
    expectRejected(await getSlo(answer(id, { destination: 'https://elsewhere.example/slo' })), 'destination_mismatch');
    expectRejected(await getSlo(answer(id, { issuer: 'https://other-idp.example' })), 'issuer_mismatch');
    expectRejected(await getSlo(answer(id, { status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' })), 'status_not_success');
    // None of those spent the request: the genuine answer still lands.
    expect((await getSlo(answer(id))).headers.get('location')).toBe(`${BASE_URL}/signed-out`);
  });

  it('sign-out without signOutOfIdp answers no idpLogoutUrl', async () => {
    const a = await signIn(ALICE);
    const out = await t.request('POST', '/api/auth/sign-out', { as: { cookie: a.cookie } });
    expect(out.body.data).toBeNull();
  });
});

describe('settings', () => {
  it('signOutOfIdp without any idpSloUrl is refused, naming idpSloUrl', async () => {
    const res = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      as: owner,
      body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificate: IDP_KEYS.cert, signOutOfIdp: true },
    });
    expect(res.status, res.text).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.details.issues[0].path).toBe('idpSloUrl');
  });

  it('fills idpSloUrl from the metadata (HTTP-Redirect), an explicit value wins, null clears it', async () => {
    const cert = IDP_KEYS.cert.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const metadata = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${IDP_ENTITY_ID}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
      `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.customer.example/slo/post"/>` +
      `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.customer.example/slo/redirect"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.customer.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
    const put = (extra: Record<string, unknown>) => t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'saml', idpMetadataXml: metadata, ...extra } });
    expect((await put({ signOutOfIdp: true })).body.data.idpSloUrl).toBe('https://idp.customer.example/slo/redirect');
    expect((await put({ idpSloUrl: 'https://idp.customer.example/other' })).body.data.idpSloUrl).toBe('https://idp.customer.example/other');
    expect((await put({ idpSloUrl: null })).body.data.idpSloUrl).toBeNull();
  });

  it('the SP metadata lists the SingleLogoutService for HTTP-Redirect and HTTP-POST', async () => {
    const res = await t.request('GET', '/api/auth/sso/acme/saml/metadata');
    for (const binding of ['HTTP-Redirect', 'HTTP-POST']) expect(res.text).toContain(`<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:${binding}" Location="${SP.sloUrl}"/>`);
  });
});
