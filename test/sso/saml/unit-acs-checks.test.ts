import { describe, expect, it } from 'vitest';
import * as acs from '../../../src/sso/saml/acs-checks.js';
import { profileFromAssertion } from '../../../src/sso/saml/attributes.js';
import { SsoLoginError } from '../../../src/sso/errors.js';
import { assertionXml, buildResponseXml, createTestSamlIdp } from '../../helpers/saml-sign.js';
import { reasonOf } from '../../helpers/sso.js';

const idp = await createTestSamlIdp();
const NOW = new Date('2026-06-01T12:00:00Z');
const ACS = 'https://gh.example/api/auth/sso/acme/saml/acs';
const SP = 'https://gh.example/api/auth/sso/acme/saml/metadata';
const X: acs.AcsExpectations = { idpEntityId: idp.entityId, idpCertificates: [idp.certificatePem], spEntityId: SP, acsUrl: ACS, spPrivateKey: () => '', now: NOW };

const parse = (xml: string) => acs.parseResponse({ base64: Buffer.from(xml).toString('base64'), xml });
const assertionEl = (xml: string) => acs.readSignedAssertion(xml);
const spec = { idp, acsUrl: ACS, audience: SP, nameId: 'u-1', now: NOW, sign: 'none' as const };

describe('envelope checks', () => {
  it('caps the size at 512 KiB', () => {
    expect(reasonOf(() => acs.checkSize(512 * 1024))).toBe('passed');
    expect(reasonOf(() => acs.checkSize(512 * 1024 + 1))).toBe('response_too_large');
  });

  it('refuses a missing or non-base64 SAMLResponse as malformed', () => {
    expect(reasonOf(() => acs.decodeResponse(undefined))).toBe('malformed');
    expect(reasonOf(() => acs.decodeResponse('%%%not base64'))).toBe('malformed');
    expect(reasonOf(() => acs.decodeResponse(Buffer.from('plain text').toString('base64')))).toBe('malformed');
    expect(acs.decodeResponse(Buffer.from('<x/>').toString('base64').replace(/(.{2})/, '$1\r\n')).xml).toBe('<x/>');
  });

  it('refuses DOCTYPE and ENTITY before parsing, and any parser error', () => {
    expect(reasonOf(() => parse('<!DOCTYPE samlp:Response><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'))).toBe('doctype_refused');
    expect(reasonOf(() => parse('<?xml version="1.0"?><!ENTITY x "y"><a/>'))).toBe('doctype_refused');
    expect(reasonOf(() => parse('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><unclosed></samlp:Response>'))).toBe('malformed');
    expect(reasonOf(() => parse('<Response/>'))).toBe('malformed');
  });

  it('refuses a non-Success status', async () => {
    const xml = await buildResponseXml({ ...spec, statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder' });
    expect(reasonOf(() => acs.checkStatus(parse(xml)))).toBe('status_not_success');
    expect(reasonOf(() => acs.checkStatus(parse(xml.replace('status:Responder', 'status:Success'))))).toBe('passed');
  });

  it('counts assertions anywhere in the document, not only children of the Response', async () => {
    const xml = await buildResponseXml(spec);
    expect(reasonOf(() => acs.checkAssertionCount(parse(xml)))).toBe('passed');
    const wrapped = xml.replace('<samlp:Status>', `<samlp:Extensions>${assertionXml(spec)}</samlp:Extensions><samlp:Status>`);
    expect(reasonOf(() => acs.checkAssertionCount(parse(wrapped)))).toBe('assertion_count');
    const none = xml.replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, '');
    expect(reasonOf(() => acs.checkAssertionCount(parse(none)))).toBe('assertion_count');
  });
});

describe('algorithm and signature presence', () => {
  it('refuses SHA-1 signatures and digests, #WithComments and unknown algorithms; accepts RSA-SHA256', async () => {
    const signed = await buildResponseXml({ ...spec, sign: 'assertion' });
    const p = () => acs.checkAssertionCount(parse(signed));
    expect(reasonOf(() => acs.refuseWeakAlgorithms(p()))).toBe('passed');
    const variants = [
      signed.replace('xmldsig-more#rsa-sha256', 'xmldsig#rsa-sha1').replace('http://www.w3.org/2001/04/xmldsig#rsa-sha1', 'http://www.w3.org/2000/09/xmldsig#rsa-sha1'),
      signed.replace('http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2000/09/xmldsig#sha1'),
      signed.replace(/Transform Algorithm="http:\/\/www.w3.org\/2001\/10\/xml-exc-c14n#"/, 'Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"'),
      signed.replace(/CanonicalizationMethod Algorithm="http:\/\/www.w3.org\/2001\/10\/xml-exc-c14n#"/, 'CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"'),
      signed.replace('xmldsig-more#rsa-sha256', 'xmldsig-more#hmac-sha256'),
    ];
    for (const v of variants) {
      expect(v).not.toBe(signed);
      expect(reasonOf(() => acs.refuseWeakAlgorithms(acs.checkAssertionCount(parse(v))))).toBe('algorithm_refused');
    }
  });

  it('requires a signature on the response or the assertion', async () => {
    expect(reasonOf(() => acs.requireSignature(acs.checkAssertionCount(parse(assertionXmlResponse()))))).toBe('signature_missing');
    const signed = acs.checkAssertionCount(parse(await buildResponseXml({ ...spec, sign: 'response' })));
    expect(acs.requireSignature(signed)).toEqual({ responseSigned: true, assertionSigned: false });
  });
});

function assertionXmlResponse(): string {
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="${NOW.toISOString()}"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${assertionXml(spec)}</samlp:Response>`;
}

describe('checks on the signed assertion', () => {
  it('issuer of response and assertion must equal idpEntityId', async () => {
    const p = parse(await buildResponseXml(spec));
    expect(reasonOf(() => acs.checkIssuer(p, assertionEl(assertionXml(spec)), X))).toBe('passed');
    expect(reasonOf(() => acs.checkIssuer(p, assertionEl(assertionXml({ ...spec, issuer: 'https://evil.test' })), X))).toBe('issuer_mismatch');
    const other = parse(await buildResponseXml({ ...spec, issuer: `${idp.entityId}/x` }));
    expect(reasonOf(() => acs.checkIssuer(other, assertionEl(assertionXml(spec)), X))).toBe('issuer_mismatch');
  });

  it('Destination must equal the ACS URL exactly; absent only on an unsigned response', async () => {
    expect(reasonOf(() => acs.checkDestination(parse(assertionXmlResponse()), false, X))).toBe('passed');
    expect(reasonOf(() => acs.checkDestination(parse(assertionXmlResponse()), true, X))).toBe('destination_mismatch');
    const wrong = parse(await buildResponseXml({ ...spec, destination: `${ACS}/` }));
    expect(reasonOf(() => acs.checkDestination(wrong, false, X))).toBe('destination_mismatch');
  });

  it('Recipient must equal the ACS URL exactly', () => {
    expect(reasonOf(() => acs.checkRecipient(assertionEl(assertionXml(spec)), X))).toBe('passed');
    expect(reasonOf(() => acs.checkRecipient(assertionEl(assertionXml({ ...spec, recipient: `${ACS}?x=1` })), X))).toBe('recipient_mismatch');
  });

  it('Audience must equal the SP entity ID exactly (a prefix or suffix is not enough)', () => {
    expect(reasonOf(() => acs.checkAudience(assertionEl(assertionXml(spec)), X))).toBe('passed');
    expect(reasonOf(() => acs.checkAudience(assertionEl(assertionXml({ ...spec, audience: SP.slice(0, -1) })), X))).toBe('audience_mismatch');
    expect(reasonOf(() => acs.checkAudience(assertionEl(assertionXml({ ...spec, audience: `${SP}x` })), X))).toBe('audience_mismatch');
    const noRestriction = assertionXml(spec).replace(/<saml:AudienceRestriction>.*<\/saml:AudienceRestriction>/, '');
    expect(reasonOf(() => acs.checkAudience(assertionEl(noRestriction), X))).toBe('audience_mismatch');
  });

  it('times: 60 s of skew each way, on the given clock', () => {
    const a = assertionEl(assertionXml({ ...spec, lifetimeMs: 5 * 60_000 }));
    const confirmation = acs.checkRecipient(a, X);
    const at = (ms: number) => ({ ...X, now: new Date(NOW.getTime() + ms) });
    expect(reasonOf(() => acs.checkTimes(a, confirmation, at(0)))).toBe('passed');
    expect(reasonOf(() => acs.checkTimes(a, confirmation, at(5 * 60_000 + 59_000)))).toBe('passed');
    expect(reasonOf(() => acs.checkTimes(a, confirmation, at(5 * 60_000 + 60_000)))).toBe('expired');
    // NotBefore is now − 30 s in the helper: valid from now − 90 s with skew.
    expect(reasonOf(() => acs.checkTimes(a, confirmation, at(-89_000)))).toBe('passed');
    expect(reasonOf(() => acs.checkTimes(a, confirmation, at(-91_000)))).toBe('not_yet_valid');
    expect(acs.checkTimes(a, confirmation, X).toISOString()).toBe(new Date(NOW.getTime() + 6 * 60_000).toISOString());
  });

  it('reads the whole NameID: a comment or processing instruction cannot truncate it', () => {
    const xml = assertionXml({ ...spec, nameId: 'admin@victim.test.evil.test' });
    expect(acs.readSubject(assertionEl(xml.replace('admin@victim.test', 'admin@victim.test<!---->'))).nameId).toBe('admin@victim.test.evil.test');
    expect(acs.readSubject(assertionEl(xml.replace('admin@victim.test', 'admin@victim.test<?x y?>'))).nameId).toBe('admin@victim.test.evil.test');
    expect(reasonOf(() => acs.readSubject(assertionEl(xml.replace(/<saml:NameID[^>]*>[^<]*<\/saml:NameID>/, ''))))).toBe('subject_missing');
  });

  it('InResponseTo: the signed SubjectConfirmationData counts; an unsigned Response attribute alone does not', async () => {
    const withIrt = assertionEl(assertionXml({ ...spec, inResponseTo: '_abc' }));
    const without = assertionEl(assertionXml(spec));
    const resp = (irt: string | null) => parse(assertionXmlResponse().replace('ID="_r"', irt ? `ID="_r" InResponseTo="${irt}"` : 'ID="_r"'));
    expect(acs.readInResponseTo(resp(null), acs.checkRecipient(withIrt, X), false)).toBe('_abc');
    expect(acs.readInResponseTo(resp('_abc'), acs.checkRecipient(withIrt, X), false)).toBe('_abc');
    expect(reasonOf(() => acs.readInResponseTo(resp('_other'), acs.checkRecipient(withIrt, X), true))).toBe('in_response_to_unknown');
    expect(reasonOf(() => acs.readInResponseTo(resp('_abc'), acs.checkRecipient(without, X), false))).toBe('in_response_to_unknown');
    expect(acs.readInResponseTo(resp('_abc'), acs.checkRecipient(without, X), true)).toBe('_abc');
    expect(acs.readInResponseTo(resp(null), acs.checkRecipient(without, X), false)).toBeNull();
  });
});

describe('attribute mapping (SPEC §11 defaults)', () => {
  const values = (attributes: Record<string, string[]>, nameId = 'opaque-1', nameIdFormat: string | null = null) => ({ nameId, nameIdFormat, attributes });
  const CLAIMS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

  it('email from an emailAddress NameID, else the first of email, mail, the claims URI and the OID', () => {
    expect(profileFromAssertion({}, values({}, 'a@x.test', 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress')).email).toBe('a@x.test');
    expect(profileFromAssertion({}, values({}, 'a@x.test', 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent')).email).toBeNull();
    expect(profileFromAssertion({}, values({ mail: ['m@x.test'], [`${CLAIMS}/emailaddress`]: ['c@x.test'] })).email).toBe('m@x.test');
    expect(profileFromAssertion({}, values({ [`${CLAIMS}/emailaddress`]: ['c@x.test'] })).email).toBe('c@x.test');
    expect(profileFromAssertion({}, values({ 'urn:oid:0.9.2342.19200300.100.1.3': ['o@x.test'] })).email).toBe('o@x.test');
  });

  it('names and groups from Okta, Entra ID, Google and OneLogin attribute names', () => {
    const entra = profileFromAssertion({}, values({
      [`${CLAIMS}/givenname`]: ['Ada'], [`${CLAIMS}/surname`]: ['Lovelace'],
      'http://schemas.microsoft.com/identity/claims/displayname': ['Ada L.'], 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': ['g1', 'g2'],
    }));
    expect(entra).toMatchObject({ name: 'Ada L.', subject: 'opaque-1', claims: { firstName: 'Ada', lastName: 'Lovelace', groups: ['g1', 'g2'] } });
    const okta = profileFromAssertion({}, values({ firstName: ['Grace'], lastName: ['Hopper'], groups: ['eng'] }));
    expect(okta).toMatchObject({ name: 'Grace Hopper', claims: { groups: ['eng'] } });
    const ldap = profileFromAssertion({}, values({ 'urn:oid:2.5.4.42': ['Alan'], 'urn:oid:2.5.4.4': ['Turing'], memberOf: ['cn=x'] }));
    expect(ldap).toMatchObject({ name: 'Alan Turing', claims: { groups: ['cn=x'] } });
  });

  it('an explicit mapping is used alone (no fallback to NameID or defaults)', () => {
    const v = values({ email: ['default@x.test'], workEmail: ['work@x.test'] }, 'n@x.test', 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress');
    expect(profileFromAssertion({ email: ['workEmail'] }, v).email).toBe('work@x.test');
    expect(profileFromAssertion({ email: ['missing'] }, v).email).toBeNull();
  });
});

describe('verifySignature', () => {
  const spX = { ...X, now: new Date() };
  const base = { ...spec, now: new Date(), sign: 'assertion' as const };
  const parsed = async (xml: string) => acs.checkAssertionCount(parse(xml));

  it('returns the signed assertion for a genuine response, and refuses one signed by another key', async () => {
    const p = await parsed(await buildResponseXml(base));
    expect(await acs.verifySignature(p, acs.requireSignature(p), spX)).toContain('<saml:NameID');
    const other = await parsed(await buildResponseXml({ ...base, idp: await createTestSamlIdp(idp.entityId) }));
    await expect(acs.verifySignature(other, acs.requireSignature(other), spX)).rejects.toMatchObject({ reason: 'signature_invalid' });
  });

  it('names a missing NotOnOrAfter (which node-saml cannot parse) as expired, not as a bad signature', async () => {
    const xml = assertionXml(base).replace(/ NotOnOrAfter="[^"]+"(?= Recipient)/, '');
    const { signElement } = await import('../../helpers/saml-sign.js');
    const signedAssertion = signElement(xml, 'Assertion', idp);
    const response = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r2" Version="2.0" IssueInstant="${base.now.toISOString()}"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${signedAssertion}</samlp:Response>`;
    const p = await parsed(response);
    await expect(acs.verifySignature(p, acs.requireSignature(p), spX)).rejects.toMatchObject({ reason: 'expired' });
  });
});
