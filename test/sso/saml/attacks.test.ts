import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as acs from '../../../src/sso/saml/acs-checks.js';
import { SsoLoginError } from '../../../src/sso/errors.js';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestResponse, type TestUser } from '../../helpers/app.js';
import {
  ALG,
  ATTACKER_KEYS,
  EVIL,
  IDP_KEYS,
  NAMEID_PERSISTENT,
  NS,
  XSW_DESCRIPTIONS,
  XSW_VARIANTS,
  applyXsw,
  billionLaughs,
  buildAssertion,
  buildResponse,
  decodeRedirect,
  encryptAssertion,
  forgeResponse,
  hasValidSignature,
  injectIntoAttribute,
  injectIntoElement,
  injectIntoNameId,
  postForm,
  relocateAssertionSignature,
  responseFields,
  samlId,
  setResponseAttribute,
  signedAssertion,
  signElement,
  stripSignatures,
  withDoctype,
  xswSigns,
  type ForgeOptions,
  type ResponseFields,
} from '../../helpers/saml-forge.js';

/**
 * Forged and tampered SAML responses posted to the ACS, each test named after the attack it
 * stops. The IdP is test/helpers/saml-forge.ts: it signs with the pinned test certificate
 * (test/fixtures/saml/idp.crt) exactly as a real IdP would, then tampers with the signed XML
 * the way an attacker holding one genuine response would. Every refusal must be a 400
 * SSO_LOGIN_FAILED with its stable reason, no session cookie, no SSO session row, and an audit
 * record of the reason. Every test runs on a fresh Gatehouse (so no replay cache carries over).
 *
 * Nothing here leaves the process: the IdP's SSO URL is a loopback address nobody listens on and
 * is only ever a redirect target.
 */
const IDP_ENTITY_ID = 'https://idp.customer.example/saml/metadata';
const IDP_SSO_URL = 'http://127.0.0.1:9/saml/sso';
const IDP_ORIGIN = 'https://idp.customer.example';
const ALICE = 'alice@customer.example';

let t: TestGatehouse;
let owner: TestUser;
let orgA: string;

interface SpInfo {
  slug: string;
  acsUrl: string;
  spEntityId: string;
  /** The SP's public certificate (what the IdP encrypts to). */
  spCertificate: string;
}
let spA: SpInfo;

async function configureSaml(orgId: string, slug: string, extra: Record<string, unknown> = {}): Promise<SpInfo> {
  const put = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificate: IDP_KEYS.cert, ...extra },
  });
  if (put.status !== 200) throw new Error(`PUT settings/sso (SAML) failed: ${put.status} ${put.text}`);
  const get = await t.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
  const data = get.body?.data ?? put.body.data;
  return {
    slug,
    acsUrl: data.acsUrl ?? `${BASE_URL}/api/auth/sso/${slug}/saml/acs`,
    spEntityId: data.spEntityId ?? `${BASE_URL}/api/auth/sso/${slug}/saml/metadata`,
    spCertificate: data.spCertificate ?? '',
  };
}

beforeEach(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  owner = await t.signUp('owner@saas.example');
  orgA = await createOrg(t, owner, 'Acme', 'acme');
  spA = await configureSaml(orgA, 'acme');
});
afterEach(async () => {
  await t.destroy();
});

/** SP-initiated start: the AuthnRequest Gatehouse sent (decoded from the redirect). */
async function startLogin(sp: SpInfo = spA, query = '') {
  const res = await t.request('GET', `/api/auth/sso/${sp.slug}/login${query}`);
  expect(res.status, res.text).toBe(302);
  return decodeRedirect(res.headers.get('location')!);
}

/** A genuine response's fields for `sp`, answering `inResponseTo`. */
function fieldsFor(sp: SpInfo, inResponseTo: string | null, overrides: Partial<ResponseFields> = {}, email = ALICE): ResponseFields {
  return responseFields({ acsUrl: sp.acsUrl, spEntityId: sp.spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo, now: t.clock.now(), email }, overrides);
}

/** A signed response to a fresh SP-initiated login at `sp`. */
async function genuine(sp: SpInfo = spA, overrides: Partial<ResponseFields> = {}, opts: ForgeOptions = {}) {
  const req = await startLogin(sp);
  const xml = forgeResponse(fieldsFor(sp, req.id, overrides), opts);
  return { xml, relayState: req.relayState, requestId: req.id };
}

/** POST the HTTP-POST binding form to the ACS, as the IdP's page would (cross-site, no cookies). */
function postAcs(xml: string, relayState: string | null = null, sp: SpInfo = spA): Promise<TestResponse> {
  return postRaw(postForm(xml, relayState), sp);
}
function postRaw(body: string, sp: SpInfo = spA): Promise<TestResponse> {
  return t.request('POST', `/api/auth/sso/${sp.slug}/saml/acs`, {
    rawBody: body,
    origin: IDP_ORIGIN,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });
}

const ssoSessions = () => t.deps.db.selectFrom('sessions').select(['id', 'user_id']).where('auth_method', '=', 'sso').execute();

async function expectRefused(res: TestResponse, reason: string | readonly string[]) {
  const reasons = typeof reason === 'string' ? [reason] : reason;
  expect(res.status, res.text).toBe(400);
  expect(res.body, res.text).toMatchObject({ success: false, status: 400, code: 'SSO_LOGIN_FAILED' });
  expect(reasons, `reason given: ${res.body.details?.reason}`).toContain(res.body.details?.reason);
  expect(res.cookie).toBeNull();
  expect(await ssoSessions()).toHaveLength(0);
  const failures = await t.deps.db.selectFrom('audit_events').select(['metadata']).where('action', '=', 'sso.login_failed').execute();
  expect(failures.some((f) => f.metadata?.includes(`"reason":"${res.body.details.reason}"`)), 'the audit log records the reason').toBe(true);
}

/** The attacker's identity got nothing: no user, no identity, no session. */
async function expectNotImpersonated(nameId: string = EVIL.nameId) {
  expect(await t.deps.db.selectFrom('users').select('id').where('email', '=', nameId.toLowerCase()).execute()).toHaveLength(0);
  expect(await t.deps.db.selectFrom('sso_identities').select('id').where('subject', '=', nameId).execute()).toHaveLength(0);
}

/** 302 with a session cookie whose session belongs to `email` and came from SSO. */
async function expectSignedIn(res: TestResponse, email: string, landing = '/') {
  expect(res.status, res.text).toBe(302);
  expect(res.cookie).toBeTruthy();
  expect(new URL(res.headers.get('location')!, BASE_URL).href).toBe(new URL(landing, BASE_URL).href);
  const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
  expect(session.status, session.text).toBe(200);
  expect(session.body.data.user.email).toBe(email);
  expect(session.body.data.session.authMethod).toBe('sso');
  expect(session.body.data.session.organizationId).toBe(orgA);
}

describe('control: genuine responses sign in', () => {
  it('signs in with a correctly signed SP-initiated response (assertion signed)', async () => {
    const g = await genuine();
    expect(hasValidSignature(g.xml)).toBe(true);
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
  });

  it('signs in with a response signed on both the Response and the Assertion', async () => {
    const g = await genuine(spA, {}, { signResponse: true });
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
  });

  it('signs in with a response whose Response alone is signed (the baseline of XSW1/XSW2)', async () => {
    const g = await genuine(spA, {}, { signAssertion: false, signResponse: true });
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
  });

  it('lands on the returnTo the login started with', async () => {
    const req = await startLogin(spA, '?returnTo=%2Fapp%2Fsettings');
    const xml = forgeResponse(fieldsFor(spA, req.id));
    await expectSignedIn(await postAcs(xml, req.relayState), ALICE, '/app/settings');
  });
});

describe('XML Signature Wrapping (Somorovsky et al. 2012, SAML Raider numbering)', () => {
  for (const variant of XSW_VARIANTS) {
    it(`rejects ${variant} wrapped ${xswSigns(variant)}: ${XSW_DESCRIPTIONS[variant]}`, async () => {
      const signed = xswSigns(variant) === 'response' ? { signAssertion: false, signResponse: true } : { signAssertion: true, signResponse: false };
      const g = await genuine(spA, {}, signed);
      const forged = applyXsw(g.xml, variant);
      // The premise of the attack: the IdP's signature still verifies over the original element.
      expect(hasValidSignature(forged)).toBe(true);
      expect(forged).toContain(`>${EVIL.nameId}<`);
      const res = await postAcs(forged, g.relayState);
      // Every variant leaves two Assertions in the document: refused before any signature is read.
      await expectRefused(res, 'assertion_count');
      await expectNotImpersonated();
    });
  }
});

describe('XML Signature Wrapping behind the assertion count (defence in depth)', () => {
  // The ACS refuses any document with more than one Assertion before it verifies a signature.
  // These tests skip that check on purpose: whichever Assertion of the wrapped document the
  // signature step is handed (the attacker's or the original), what comes back as signed content
  // must be the IdP's original assertion, or a refusal — never the attacker's NameID.
  for (const variant of XSW_VARIANTS) {
    it(`signature verification of ${variant} never yields the attacker's assertion`, async () => {
      const signed = xswSigns(variant) === 'response' ? { signAssertion: false, signResponse: true } : { signAssertion: true, signResponse: false };
      const forged = applyXsw(forgeResponse(fieldsFor(spA, samlId()), signed), variant);
      expect(hasValidSignature(forged)).toBe(true);
      const parsed = acs.parseResponse(acs.decodeResponse(Buffer.from(forged).toString('base64')));
      const candidates = Array.from({ length: parsed.doc.getElementsByTagNameNS(NS.saml, 'Assertion').length }, (_, i) => parsed.doc.getElementsByTagNameNS(NS.saml, 'Assertion').item(i)!);
      expect(candidates.length).toBe(2);
      const expectations: acs.AcsExpectations = { idpEntityId: IDP_ENTITY_ID, idpCertificates: [IDP_KEYS.cert], spEntityId: spA.spEntityId, acsUrl: spA.acsUrl, spPrivateKey: () => ATTACKER_KEYS.key, now: t.clock.now() };
      for (const assertion of candidates) {
        const p = { ...parsed, assertion };
        try {
          const xml = await acs.verifySignature(p, acs.requireSignature(p), expectations);
          expect(acs.readSubject(acs.readSignedAssertion(xml)).nameId).toBe(ALICE);
        } catch (e) {
          if (!(e instanceof SsoLoginError)) throw e;
          expect(['signature_invalid', 'signature_missing']).toContain(e.reason);
        }
      }
    });
  }
});

describe('signatures', () => {
  it('rejects a response whose signature was stripped', async () => {
    const g = await genuine();
    await expectRefused(await postAcs(stripSignatures(g.xml), g.relayState), 'signature_missing');
  });

  it("rejects a response signed by an attacker's key with the attacker's certificate in KeyInfo", async () => {
    const req = await startLogin();
    const xml = forgeResponse(fieldsFor(spA, req.id, {}, EVIL.nameId), { keys: ATTACKER_KEYS, keyInfo: true });
    expect(hasValidSignature(xml, ATTACKER_KEYS.cert)).toBe(true);
    await expectRefused(await postAcs(xml, req.relayState), 'signature_invalid');
    await expectNotImpersonated();
  });

  it('rejects a valid Assertion signature relocated into the Response (signature not over its parent)', async () => {
    const g = await genuine();
    const moved = relocateAssertionSignature(g.xml);
    expect(hasValidSignature(moved)).toBe(true);
    await expectRefused(await postAcs(moved, g.relayState), 'signature_invalid');
  });

  it('rejects an RSA-SHA1 signature (SHA-1 signature method)', async () => {
    const g = await genuine(spA, {}, { signatureAlgorithm: ALG.rsaSha1 });
    expect(g.xml).toContain(ALG.rsaSha1);
    await expectRefused(await postAcs(g.xml, g.relayState), 'algorithm_refused');
  });

  it('rejects a SHA-1 reference digest under an RSA-SHA256 signature', async () => {
    const g = await genuine(spA, {}, { digestAlgorithm: ALG.sha1 });
    expect(g.xml).toContain(`DigestMethod Algorithm="${ALG.sha1}"`);
    await expectRefused(await postAcs(g.xml, g.relayState), 'algorithm_refused');
  });

  it('rejects #WithComments canonicalization', async () => {
    const g = await genuine(spA, {}, { canonicalization: ALG.excC14nWithComments });
    expect(g.xml).toContain(ALG.excC14nWithComments);
    await expectRefused(await postAcs(g.xml, g.relayState), 'algorithm_refused');
  });

  it('rejects a SHA-1 digest on the Response signature when the Assertion signature is fine', async () => {
    const req = await startLogin();
    const f = fieldsFor(spA, req.id);
    const xml = signElement(signElement(buildResponse(f), f.assertionId), f.responseId, { digestAlgorithm: ALG.sha1 });
    await expectRefused(await postAcs(xml, req.relayState), 'algorithm_refused');
  });
});

describe('NameID truncation through canonicalization (CVE-2017-11427 family)', () => {
  // The attacker owns admin@victim.example.evil.test at the IdP, gets a genuine signed response,
  // and inserts markup after "admin@victim.example". Exclusive c14n drops the comment, so the
  // signature still verifies; a parser reading the first text node sees admin@victim.example.
  const REAL = 'admin@victim.example.evil.test';

  async function attempt(markup: string) {
    const req = await startLogin();
    const signed = forgeResponse(fieldsFor(spA, req.id, { attributes: {} }, REAL));
    const forged = injectIntoNameId(signed, EVIL.nameId, markup);
    expect(forged).toContain(`${EVIL.nameId}${markup}.evil.test`);
    return { forged, res: await postAcs(forged, req.relayState) };
  }

  async function expectNotTruncated(res: TestResponse) {
    await expectNotImpersonated();
    if (res.status === 302) {
      // Accepted: then only as the full, canonical value.
      const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
      expect(session.body.data.user.email).toBe(REAL);
      const identities = await t.deps.db.selectFrom('sso_identities').select('subject').execute();
      expect(identities.map((i) => i.subject)).toEqual([REAL]);
    } else {
      expect(res.status, res.text).toBe(400);
      expect(res.body.code).toBe('SSO_LOGIN_FAILED');
      expect(res.cookie).toBeNull();
    }
  }

  it('does not sign in as the truncated identity: comment inside NameID (admin@victim.example<!---->.evil.test)', async () => {
    const { forged, res } = await attempt('<!---->');
    expect(hasValidSignature(forged)).toBe(true);
    await expectNotTruncated(res);
    // Gatehouse's choice: the signature is valid, so it signs in, as the full canonical value.
    expect(res.status).toBe(302);
  });

  it('does not sign in as the truncated identity: processing instruction inside NameID', async () => {
    const { forged, res } = await attempt('<?gh x?>');
    // c14n keeps processing instructions, so inserting one breaks the IdP's signature.
    expect(hasValidSignature(forged)).toBe(false);
    await expectNotTruncated(res);
    expect(res.body?.details?.reason).toBe('signature_invalid');
  });
});

describe('email truncation through canonicalization (attribute value)', () => {
  it('does not sign in as the truncated email: comment inside the email attribute of a persistent NameID', async () => {
    const real = 'admin@victim.example.evil.test';
    const req = await startLogin();
    const signed = forgeResponse(fieldsFor(spA, req.id, { nameId: 'persistent-4711', nameIdFormat: NAMEID_PERSISTENT, attributes: { email: real } }));
    const forged = injectIntoAttribute(signed, 'email', EVIL.nameId, '<!---->');
    expect(hasValidSignature(forged)).toBe(true);
    const res = await postAcs(forged, req.relayState);
    await expectNotImpersonated();
    expect(res.status, res.text).toBe(302); // Gatehouse's choice: signed, so accepted as the full value
    if (res.status === 302) {
      const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
      expect(session.body.data.user.email).toBe(real);
    } else {
      expect(res.body.code).toBe('SSO_LOGIN_FAILED');
      expect(res.cookie).toBeNull();
    }
  });
});

describe('audience, destination, recipient, issuer, status', () => {
  it('rejects an assertion for another service provider (wrong Audience)', async () => {
    const g = await genuine(spA, { audience: 'https://other-sp.example/saml/metadata' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'audience_mismatch');
  });

  it('rejects an Audience that only starts with ours (prefix match)', async () => {
    const g = await genuine(spA, { audience: `${spA.spEntityId}.evil.example` });
    await expectRefused(await postAcs(g.xml, g.relayState), 'audience_mismatch');
  });

  it("rejects another SP's assertion whose Audience has a comment after our entity ID (truncation)", async () => {
    // Signed for "<our entity ID>.evil.test"; a parser stopping at the comment would read ours.
    const g = await genuine(spA, { audience: `${spA.spEntityId}.evil.test` });
    const forged = injectIntoElement(g.xml, 'Audience', spA.spEntityId, '<!---->');
    expect(hasValidSignature(forged)).toBe(true);
    await expectRefused(await postAcs(forged, g.relayState), 'audience_mismatch');
  });

  it('rejects a response sent to another ACS (wrong Destination)', async () => {
    const g = await genuine(spA, { destination: 'https://other-sp.example/acs' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'destination_mismatch');
  });

  it('rejects a Destination that differs from the ACS URL only by a trailing slash or letter case', async () => {
    for (const destination of [`${spA.acsUrl}/`, spA.acsUrl.toUpperCase().replace('HTTP://', 'http://')]) {
      const g = await genuine(spA, { destination });
      const res = await postAcs(g.xml, g.relayState);
      expect(res.body.details?.reason, destination).toBe('destination_mismatch');
      expect(res.cookie).toBeNull();
    }
    expect(await ssoSessions()).toHaveLength(0);
  });

  it('rejects a subject confirmation for another ACS (wrong Recipient)', async () => {
    const g = await genuine(spA, { recipient: 'https://other-sp.example/acs' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'recipient_mismatch');
  });

  it('rejects a response from another IdP signed with the pinned key (wrong Issuer)', async () => {
    const g = await genuine(spA, { issuer: 'https://impostor-idp.example/metadata' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'issuer_mismatch');
  });

  it('rejects an assertion whose Issuer alone is wrong', async () => {
    const g = await genuine(spA, { assertionIssuer: 'https://impostor-idp.example/metadata' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'issuer_mismatch');
  });

  it('rejects a response whose Status is not Success even with a signed assertion', async () => {
    const g = await genuine(spA, { statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Requester' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'status_not_success');
  });

  it('rejects an assertion without a Subject', async () => {
    // No Subject means no bearer SubjectConfirmationData either; the Recipient check comes first.
    const g = await genuine(spA, { subject: false });
    await expectRefused(await postAcs(g.xml, g.relayState), 'recipient_mismatch');
  });

  it('rejects an assertion with an empty NameID', async () => {
    const g = await genuine(spA, { nameId: '' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'subject_missing');
  });

  it('rejects an assertion without any NotOnOrAfter (it would never expire)', async () => {
    const g = await genuine(spA, { notOnOrAfter: null, subjectNotOnOrAfter: null });
    await expectRefused(await postAcs(g.xml, g.relayState), 'expired');
  });

  it('rejects a persistent NameID with no email attribute', async () => {
    const g = await genuine(spA, { nameId: 'opaque-id-4711', nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { firstName: 'Alice' } });
    await expectRefused(await postAcs(g.xml, g.relayState), 'email_missing');
  });

  it('rejects a signed Response without Destination', async () => {
    const g = await genuine(spA, { destination: null }, { signAssertion: false, signResponse: true });
    await expectRefused(await postAcs(g.xml, g.relayState), 'destination_mismatch');
  });

  it('rejects an assertion without Issuer', async () => {
    const g = await genuine(spA, { assertionIssuer: null });
    await expectRefused(await postAcs(g.xml, g.relayState), 'issuer_mismatch');
  });

  it('rejects an assertion without AudienceRestriction', async () => {
    const g = await genuine(spA, { audience: null });
    await expectRefused(await postAcs(g.xml, g.relayState), 'audience_mismatch');
  });

  it('rejects a bearer confirmation without Recipient', async () => {
    const g = await genuine(spA, { recipient: null });
    await expectRefused(await postAcs(g.xml, g.relayState), 'recipient_mismatch');
  });

  it('rejects a response with two signed assertions', async () => {
    const req = await startLogin();
    const first = fieldsFor(spA, req.id);
    const second = fieldsFor(spA, req.id, {}, EVIL.nameId);
    const xml = buildResponse(first, [signedAssertion(first), signedAssertion(second)]);
    expect(hasValidSignature(xml)).toBe(true);
    await expectRefused(await postAcs(xml, req.relayState), 'assertion_count');
    await expectNotImpersonated();
  });
});

describe('validity window (60 s skew)', () => {
  const at = (seconds: number) => new Date(t.clock.now().getTime() + seconds * 1000);

  it('rejects an expired assertion (NotOnOrAfter 120 s ago, beyond the skew)', async () => {
    const g = await genuine(spA, { issueInstant: at(-600), authnInstant: at(-600), notBefore: at(-600), notOnOrAfter: at(-120), subjectNotOnOrAfter: at(-120) });
    await expectRefused(await postAcs(g.xml, g.relayState), 'expired');
  });

  it('rejects an assertion that is not yet valid (NotBefore in 120 s, beyond the skew)', async () => {
    const g = await genuine(spA, { notBefore: at(120), notOnOrAfter: at(600), subjectNotOnOrAfter: at(600) });
    await expectRefused(await postAcs(g.xml, g.relayState), 'not_yet_valid');
  });

  it('accepts an assertion that expired 30 s ago (within the skew)', async () => {
    const g = await genuine(spA, { issueInstant: at(-300), authnInstant: at(-300), notBefore: at(-300), notOnOrAfter: at(-30), subjectNotOnOrAfter: at(-30) });
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
  });

  it('accepts an assertion valid from 30 s in the future (within the skew)', async () => {
    const g = await genuine(spA, { notBefore: at(30), notOnOrAfter: at(600), subjectNotOnOrAfter: at(600) });
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
  });
});

describe('XML parsing', () => {
  it('rejects a DOCTYPE, even an empty one in an otherwise valid response', async () => {
    const g = await genuine();
    await expectRefused(await postAcs(withDoctype(g.xml), g.relayState), 'doctype_refused');
  });

  it('rejects entity expansion (billion laughs)', async () => {
    const g = await genuine();
    await expectRefused(await postAcs(billionLaughs(g.xml), g.relayState), 'doctype_refused');
  });

  it('rejects a response over 512 KiB before decoding it', async () => {
    const g = await genuine(spA, { attributes: { email: ALICE, padding: 'x'.repeat(600 * 1024) } });
    expect(hasValidSignature(g.xml)).toBe(true);
    const body = postForm(g.xml, g.relayState);
    expect(body.length).toBeGreaterThan(512 * 1024);
    await expectRefused(await postRaw(body), 'response_too_large');
  });

  it('rejects an oversized response by its declared Content-Length, and a chunked one over 1 MiB, as response_too_large (not the generic 413)', async () => {
    const huge = postForm(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${'x'.repeat(1100 * 1024)}</samlp:Response>`);
    // Without Content-Length: the body is streamed and cut at 512 KiB.
    await expectRefused(await postRaw(huge), 'response_too_large');
    // With a declared Content-Length over the cap: refused before reading.
    const declared = await t.request('POST', `/api/auth/sso/${spA.slug}/saml/acs`, {
      rawBody: huge,
      origin: IDP_ORIGIN,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'content-length': String(Buffer.byteLength(huge)) },
    });
    await expectRefused(declared, 'response_too_large');
  });

  it('rejects a SAMLResponse that is not XML', async () => {
    await expectRefused(await postRaw(new URLSearchParams({ SAMLResponse: Buffer.from('not xml at all').toString('base64') }).toString()), 'malformed');
  });
});

describe('request binding and replay', () => {
  it('rejects a replayed response (same response posted twice)', async () => {
    const g = await genuine();
    await expectSignedIn(await postAcs(g.xml, g.relayState), ALICE);
    const again = await postAcs(g.xml, g.relayState);
    expect(again.status).toBe(400);
    expect(['replayed', 'in_response_to_unknown']).toContain(again.body.details.reason);
    expect(again.cookie).toBeNull();
    expect(await ssoSessions()).toHaveLength(1);
  });

  it('rejects a replayed IdP-initiated response (assertion ID cache)', async () => {
    await configureSaml(orgA, 'acme', { allowIdpInitiated: true });
    const xml = forgeResponse(fieldsFor(spA, null));
    await expectSignedIn(await postAcs(xml), ALICE);
    const again = await postAcs(xml);
    expect(again.status).toBe(400);
    expect(again.body.details.reason).toBe('replayed');
    expect(again.cookie).toBeNull();
    expect(await ssoSessions()).toHaveLength(1);
  });

  it('rejects a new response reusing an accepted assertion ID', async () => {
    await configureSaml(orgA, 'acme', { allowIdpInitiated: true });
    const first = fieldsFor(spA, null);
    await expectSignedIn(await postAcs(forgeResponse(first)), ALICE);
    const second = forgeResponse(fieldsFor(spA, null, { assertionId: first.assertionId }));
    const res = await postAcs(second);
    expect(res.status).toBe(400);
    expect(res.body.details.reason).toBe('replayed');
    expect(res.cookie).toBeNull();
  });

  it('rejects a Response InResponseTo that differs from the signed SubjectConfirmationData one', async () => {
    const first = await startLogin();
    const second = await startLogin();
    const xml = setResponseAttribute(forgeResponse(fieldsFor(spA, first.id)), 'InResponseTo', second.id);
    expect(hasValidSignature(xml)).toBe(true);
    await expectRefused(await postAcs(xml, second.relayState), 'in_response_to_unknown');
  });

  it('ignores a tampered RelayState on an SP-initiated login (lands on the returnTo bound to the request)', async () => {
    const req = await startLogin(spA, '?returnTo=%2Fapp');
    const xml = forgeResponse(fieldsFor(spA, req.id));
    await expectSignedIn(await postAcs(xml, 'https://evil.example/phish'), ALICE, '/app');
  });

  it('rejects InResponseTo of a request that was never issued', async () => {
    const xml = forgeResponse(fieldsFor(spA, samlId('_never_issued')));
    await expectRefused(await postAcs(xml), 'in_response_to_unknown');
  });

  it('rejects InResponseTo of a request issued for another organization (B) posted to A', async () => {
    const orgB = await createOrg(t, owner, 'Beta', 'beta');
    const spB = await configureSaml(orgB, 'beta');
    const reqB = await startLogin(spB);
    const xml = forgeResponse(fieldsFor(spA, reqB.id));
    await expectRefused(await postAcs(xml, reqB.relayState, spA), 'in_response_to_unknown');
  });

  it("rejects organization A's response posted to organization B's ACS (same IdP)", async () => {
    const orgB = await createOrg(t, owner, 'Beta', 'beta');
    const spB = await configureSaml(orgB, 'beta', { allowIdpInitiated: true });
    const g = await genuine(spA);
    const res = await postAcs(g.xml, g.relayState, spB);
    await expectRefused(res, 'destination_mismatch');
  });
});

describe('encrypted assertions', () => {
  /** A response carrying `assertionXml` encrypted to the SP's certificate (or another one). */
  async function encrypted(assertion: (f: ResponseFields) => string, opts: Parameters<typeof encryptAssertion>[2] = {}, to = spA.spCertificate) {
    const req = await startLogin();
    const f = fieldsFor(spA, req.id);
    return { xml: buildResponse(f, [encryptAssertion(assertion(f), to, opts)]), relayState: req.relayState };
  }

  it('signs in with a signed assertion encrypted to the SP (RSA-OAEP, AES-256-GCM) (control)', async () => {
    expect(spA.spCertificate).toMatch(/BEGIN CERTIFICATE/);
    const e = await encrypted((f) => signedAssertion(f));
    await expectSignedIn(await postAcs(e.xml, e.relayState), ALICE);
  });

  it("rejects an unsigned assertion encrypted to the SP's public certificate (encryption is not authentication)", async () => {
    // Anyone can encrypt to the SP's published certificate.
    const e = await encrypted((f) => buildAssertion({ ...f, nameId: EVIL.nameId, attributes: { email: EVIL.nameId } }));
    await expectRefused(await postAcs(e.xml, e.relayState), 'signature_missing');
    await expectNotImpersonated();
  });

  it('rejects an assertion encrypted with RSA PKCS#1 v1.5 key transport (padding oracle)', async () => {
    const e = await encrypted((f) => signedAssertion(f), { keyTransport: 'rsa-1_5' });
    await expectRefused(await postAcs(e.xml, e.relayState), 'decryption_failed');
  });

  it("rejects an assertion encrypted to another key than this organization's SP key", async () => {
    const e = await encrypted((f) => signedAssertion(f), {}, ATTACKER_KEYS.cert);
    await expectRefused(await postAcs(e.xml, e.relayState), 'decryption_failed');
  });

  it('rejects an encrypted assertion next to a plaintext one', async () => {
    const req = await startLogin();
    const f = fieldsFor(spA, req.id);
    const evil = fieldsFor(spA, req.id, {}, EVIL.nameId);
    const xml = buildResponse(f, [encryptAssertion(signedAssertion(f), spA.spCertificate), signedAssertion(evil)]);
    await expectRefused(await postAcs(xml, req.relayState), 'assertion_count');
    await expectNotImpersonated();
  });

  it('rejects two assertions hidden inside one EncryptedAssertion (signature wrapping inside the encryption)', async () => {
    const req = await startLogin();
    const f = fieldsFor(spA, req.id);
    const evil = buildAssertion(fieldsFor(spA, req.id, { assertionId: samlId() }, EVIL.nameId));
    // The genuine signed assertion carries the attacker's unsigned one inside it (the signature over the
    // genuine one no longer matches, but a parser picking the first or last Assertion would be fooled).
    const wrapped = signedAssertion(f).replace('</saml:Assertion>', `${evil}</saml:Assertion>`);
    const xml = buildResponse(f, [encryptAssertion(wrapped, spA.spCertificate)]);
    await expectRefused(await postAcs(xml, req.relayState), 'decryption_failed');
    await expectNotImpersonated();
  });
});

describe('Conditions', () => {
  it('rejects a signed assertion with two Conditions elements (a second audience or validity window would go unchecked)', async () => {
    const req = await startLogin();
    const f = fieldsFor(spA, req.id);
    const extra = '<saml:Conditions NotOnOrAfter="2999-01-01T00:00:00Z"><saml:AudienceRestriction><saml:Audience>https://evil.example/sp</saml:Audience></saml:AudienceRestriction></saml:Conditions>';
    const assertion = signElement(buildAssertion(f).replace('</saml:Conditions>', `</saml:Conditions>${extra}`), f.assertionId);
    expect(hasValidSignature(buildResponse(f, [assertion]))).toBe(true);
    await expectRefused(await postAcs(buildResponse(f, [assertion]), req.relayState), ['audience_mismatch', 'malformed']);
  });
});

describe('connection and request state', () => {
  it('rejects a response to a request issued before the SSO settings changed', async () => {
    const g = await genuine();
    await configureSaml(orgA, 'acme', { defaultRole: 'admin' });
    await expectRefused(await postAcs(g.xml, g.relayState), 'in_response_to_unknown');
  });

  it('rejects a response posted to an organization that has no SAML connection', async () => {
    const orgC = await createOrg(t, owner, 'Gamma', 'gamma');
    expect(orgC).toBeTruthy();
    const res = await postAcs(forgeResponse(fieldsFor(spA, null)), null, { slug: 'gamma', acsUrl: '', spEntityId: '', spCertificate: '' });
    expect(res.status).toBe(400);
    expect(res.body.details.reason).toBe('connection_not_found');
    expect(res.cookie).toBeNull();
  });

  it('rejects a response posted to a disabled connection', async () => {
    const g = await genuine();
    await configureSaml(orgA, 'acme', { enabled: false });
    const res = await postAcs(g.xml, g.relayState);
    expect(res.status).toBe(400);
    expect(res.body.details.reason).toBe('connection_disabled');
    expect(res.cookie).toBeNull();
    expect(await ssoSessions()).toHaveLength(0);
  });
});

describe('IdP-initiated (unsolicited) responses', () => {
  it('rejects an unsolicited response when IdP-initiated login is not allowed', async () => {
    const xml = forgeResponse(fieldsFor(spA, null));
    await expectRefused(await postAcs(xml, '/dashboard'), 'unsolicited_not_allowed');
  });

  it('rejects an unsolicited signed assertion given an unsigned Response InResponseTo of a pending request (policy bypass)', async () => {
    // The attacker holds a genuine IdP-initiated response (signed assertion, no InResponseTo) and
    // starts a login to get a pending request ID. Only the assertion is signed, so the Response
    // element's InResponseTo is the attacker's to write; it must not turn the unsolicited
    // assertion into an answer to that request.
    const req = await startLogin();
    const unsolicited = forgeResponse(fieldsFor(spA, null));
    const dressed = setResponseAttribute(unsolicited, 'InResponseTo', req.id);
    expect(hasValidSignature(dressed)).toBe(true);
    await expectRefused(await postAcs(dressed, req.relayState), 'in_response_to_unknown');
  });

  it('accepts an unsolicited response when allowed and lands on a trusted RelayState', async () => {
    await configureSaml(orgA, 'acme', { allowIdpInitiated: true });
    await expectSignedIn(await postAcs(forgeResponse(fieldsFor(spA, null)), '/dashboard?tab=sso'), ALICE, '/dashboard?tab=sso');
    await expectSignedIn(await postAcs(forgeResponse(fieldsFor(spA, null)), `${BASE_URL}/welcome`), ALICE, '/welcome');
  });

  it('lands on / for an untrusted RelayState (no open redirect)', async () => {
    await configureSaml(orgA, 'acme', { allowIdpInitiated: true });
    for (const relay of ['https://evil.example/phish', '//evil.example/x', 'javascript:alert(1)', '/\\evil.example']) {
      const res = await postAcs(forgeResponse(fieldsFor(spA, null)), relay);
      await expectSignedIn(res, ALICE, '/');
    }
  });
});
