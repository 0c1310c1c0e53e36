import { deflateRawSync } from 'node:zlib';
import { SAML } from '@node-saml/node-saml';
import { describe, expect, it } from 'vitest';
import * as slo from '../../src/logout/saml/slo-checks.js';
import { reasonOf } from '../helpers/sso.js';
import { ALG, ATTACKER_KEYS, IDP_KEYS, signElement, withDoctype } from '../helpers/saml-forge.js';
import { buildLogoutRequest, buildLogoutResponse, logoutRequestFields, postBody, redirectQuery } from '../helpers/saml-logout.js';

/** One test (at least) per check of src/logout/saml/slo-checks.ts, in the table's order. */
const NOW = new Date('2026-06-01T12:00:00Z');
const IDP = 'https://idp.example/saml';
const SLO_URL = 'https://gh.example/api/auth/sso/acme/saml/slo';
const X: slo.SloExpectations = { idpEntityId: IDP, idpCertificates: [IDP_KEYS.cert], sloUrl: SLO_URL, now: NOW };
const fields = (o: Parameters<typeof logoutRequestFields>[1] = {}) => logoutRequestFields({ idpEntityId: IDP, sloUrl: SLO_URL, nameId: 'alice@acme.example', now: NOW, sessionIndex: '_s1' }, o);

/** Through check 4, from a raw Redirect query or POST body. */
const parsedRedirect = (query: string) => {
  const incoming = slo.readRedirectQuery(query);
  return slo.parseMessage(incoming, slo.decodeMessage(incoming));
};
const parsedPost = (body: string) => {
  const incoming = slo.readPostForm(new URLSearchParams(body));
  return slo.parseMessage(incoming, slo.decodeMessage(incoming));
};
/** Through check 7: the signed element of a genuine Redirect LogoutRequest. */
const signedRequest = (o: Parameters<typeof fields>[0] = {}) => slo.verifySignature(parsedRedirect(redirectQuery('SAMLRequest', buildLogoutRequest(fields(o)))), X);

describe('1 checkSize', () => {
  it('caps a message at 64 KiB', () => {
    expect(reasonOf(() => slo.checkSize(64 * 1024))).toBe('passed');
    expect(reasonOf(() => slo.checkSize(64 * 1024 + 1))).toBe('response_too_large');
  });
});

describe('2 readRedirectQuery / readPostForm', () => {
  it('keeps the raw octets the signature covers, in the binding order, whatever order they came in', () => {
    const q = slo.readRedirectQuery('Signature=c2ln&SigAlg=http%3A%2F%2Fx&RelayState=a%20b&SAMLRequest=abc%2B&other=1');
    expect(q.signedOctets).toBe('SAMLRequest=abc%2B&RelayState=a%20b&SigAlg=http%3A%2F%2Fx');
    expect(q).toMatchObject({ kind: 'SAMLRequest', value: 'abc+', relayState: 'a b', sigAlg: 'http://x', signature: 'c2ln' });
  });
  it('refuses a duplicated parameter, both or neither message, and bad URL encoding', () => {
    expect(reasonOf(() => slo.readRedirectQuery('SAMLRequest=a&SAMLRequest=b'))).toBe('malformed');
    expect(reasonOf(() => slo.readRedirectQuery('SAMLRequest=a&SAMLResponse=b'))).toBe('malformed');
    expect(reasonOf(() => slo.readRedirectQuery('RelayState=x'))).toBe('malformed');
    expect(reasonOf(() => slo.readRedirectQuery('SAMLRequest=%E0%A4%A'))).toBe('malformed');
    expect(reasonOf(() => slo.readPostForm(new URLSearchParams('SAMLRequest=a&SAMLRequest=b')))).toBe('malformed');
    expect(reasonOf(() => slo.readPostForm(new URLSearchParams('RelayState=x')))).toBe('malformed');
    expect(slo.readPostForm(new URLSearchParams('SAMLResponse=abc')).kind).toBe('SAMLResponse');
  });
});

describe('3 decodeMessage', () => {
  it('refuses non-base64, non-DEFLATE (Redirect), non-XML, and a DEFLATE bomb', () => {
    const redirect = (value: string) => slo.readRedirectQuery(`SAMLRequest=${encodeURIComponent(value)}`);
    expect(reasonOf(() => slo.decodeMessage(redirect('%%%')))).toBe('malformed');
    expect(reasonOf(() => slo.decodeMessage(redirect(Buffer.from('<x/>').toString('base64'))))).toBe('malformed');
    expect(reasonOf(() => slo.decodeMessage(redirect(deflateRawSync('plain text').toString('base64'))))).toBe('malformed');
    const bomb = deflateRawSync(Buffer.alloc(slo.MAX_INFLATED_BYTES + 1, 0x20)).toString('base64');
    expect(bomb.length).toBeLessThan(4096);
    expect(reasonOf(() => slo.decodeMessage(redirect(bomb)))).toBe('response_too_large');
    expect(slo.decodeMessage(redirect(deflateRawSync('<x/>').toString('base64')))).toBe('<x/>');
  });
});

describe('4 parseMessage', () => {
  it('refuses DOCTYPE, malformed XML, the wrong message for the parameter, and a message without ID', () => {
    const xml = buildLogoutRequest(fields());
    expect(reasonOf(() => parsedPost(postBody('SAMLRequest', withDoctype(xml), 'x', null)))).toBe('doctype_refused');
    expect(reasonOf(() => parsedPost(postBody('SAMLRequest', '<a><b></a>', 'x', null)))).toBe('malformed');
    expect(reasonOf(() => parsedPost(postBody('SAMLResponse', xml, 'x', null)))).toBe('malformed');
    expect(reasonOf(() => parsedPost(postBody('SAMLRequest', xml.replace(/ ID="[^"]+"/, ''), 'x', null)))).toBe('malformed');
    expect(reasonOf(() => parsedPost(postBody('SAMLRequest', xml, 'x', null)))).toBe('passed');
  });
});

describe('5 refuseWeakAlgorithms', () => {
  it('refuses an RSA-SHA1 SigAlg (Redirect) and SHA-1 in an XML signature (POST); accepts RSA-SHA256', () => {
    const xml = buildLogoutRequest(fields());
    expect(reasonOf(() => slo.refuseWeakAlgorithms(parsedRedirect(redirectQuery('SAMLRequest', xml, { sigAlg: ALG.rsaSha1 }))))).toBe('algorithm_refused');
    expect(reasonOf(() => slo.refuseWeakAlgorithms(parsedRedirect(redirectQuery('SAMLRequest', xml))))).toBe('passed');
    const f = fields();
    const sha1 = signElement(buildLogoutRequest(f), f.id, { signatureAlgorithm: ALG.rsaSha1, digestAlgorithm: ALG.sha1 });
    expect(reasonOf(() => slo.refuseWeakAlgorithms(parsedPost(postBody('SAMLRequest', sha1, f.id, null))))).toBe('algorithm_refused');
    expect(reasonOf(() => slo.refuseWeakAlgorithms(parsedPost(postBody('SAMLRequest', buildLogoutRequest(f), f.id))))).toBe('passed');
  });
});

describe('6 requireSignature', () => {
  it('is needed: node-saml 5.1 validateRedirectAsync on its own accepts an unsigned LogoutRequest (the library trap)', async () => {
    const saml = new SAML({ idpCert: IDP_KEYS.cert, issuer: 'https://gh.example/sp', callbackUrl: SLO_URL, audience: false, acceptedClockSkewMs: -1 });
    const query = redirectQuery('SAMLRequest', buildLogoutRequest(fields({ issueInstant: new Date(), notOnOrAfter: new Date(Date.now() + 60_000) })), { keys: null });
    const container = Object.fromEntries(new URLSearchParams(query));
    const result = await saml.validateRedirectAsync(container, query);
    expect(result.loggedOut).toBe(true);
    expect(result.profile?.nameID).toBe('alice@acme.example');
    expect(reasonOf(() => slo.requireSignature(parsedRedirect(query)))).toBe('signature_missing');
  });

  it('refuses an unsigned message in either binding', () => {
    const f = fields();
    const xml = buildLogoutRequest(f);
    expect(reasonOf(() => slo.requireSignature(parsedRedirect(redirectQuery('SAMLRequest', xml, { keys: null }))))).toBe('signature_missing');
    expect(reasonOf(() => slo.requireSignature(parsedPost(postBody('SAMLRequest', xml, f.id, null))))).toBe('signature_missing');
    expect(reasonOf(() => slo.requireSignature(parsedRedirect(redirectQuery('SAMLRequest', xml))))).toBe('passed');
    expect(reasonOf(() => slo.requireSignature(parsedPost(postBody('SAMLRequest', xml, f.id))))).toBe('passed');
  });
});

describe('7 verifySignature', () => {
  it('verifies against the pinned certificates only, in either binding, and returns the signed element', () => {
    const f = fields();
    const xml = buildLogoutRequest(f);
    expect(reasonOf(() => slo.verifySignature(parsedRedirect(redirectQuery('SAMLRequest', xml, { keys: ATTACKER_KEYS })), X))).toBe('signature_invalid');
    expect(reasonOf(() => slo.verifySignature(parsedPost(postBody('SAMLRequest', xml, f.id, ATTACKER_KEYS)), X))).toBe('signature_invalid');
    expect(slo.verifySignature(parsedRedirect(redirectQuery('SAMLRequest', xml)), X).localName).toBe('LogoutRequest');
    const post = slo.verifySignature(parsedPost(postBody('SAMLRequest', xml, f.id)), X);
    expect(post.getAttribute('ID')).toBe(f.id);
    // Several pinned certificates (a rotation): any of them.
    expect(reasonOf(() => slo.verifySignature(parsedRedirect(redirectQuery('SAMLRequest', xml)), { idpCertificates: [ATTACKER_KEYS.cert, IDP_KEYS.cert] }))).toBe('passed');
  });

  it('refuses a Redirect signature over other RelayState octets, and a POST signature whose reference is not the root', () => {
    const f = fields();
    const xml = buildLogoutRequest(f);
    const genuine = redirectQuery('SAMLRequest', xml, { relayState: 'one' });
    expect(reasonOf(() => slo.verifySignature(parsedRedirect(genuine.replace('RelayState=one', 'RelayState=two')), X))).toBe('signature_invalid');
    // Signed, then the signed content edited: the digest no longer matches.
    const signed = signElement(xml, f.id);
    const edited = signed.replace('alice@acme.example', 'bob@acme.example');
    expect(reasonOf(() => slo.verifySignature(parsedPost(new URLSearchParams({ SAMLRequest: Buffer.from(edited).toString('base64') }).toString()), X))).toBe('signature_invalid');
    // A signature over a wrapped copy (reference to another ID) does not authenticate the root.
    const wrapper = signed.replace(`ID="${f.id}"`, 'ID="_other"');
    expect(reasonOf(() => slo.verifySignature(parsedPost(new URLSearchParams({ SAMLRequest: Buffer.from(wrapper).toString('base64') }).toString()), X))).toBe('signature_invalid');
  });

  it('reads the NameID from the canonical signed content: a comment inside it does not truncate it', () => {
    const f = fields({ nameId: 'alice@acme.example.evil' });
    const xml = buildLogoutRequest(f).replace('alice@acme.example.evil', 'alice@acme.example<!---->.evil');
    const signed = slo.verifySignature(parsedPost(postBody('SAMLRequest', xml, f.id)), X);
    expect(slo.readLogoutRequest(signed).nameId).toBe('alice@acme.example.evil');
  });
});

describe('8 checkIssuer', () => {
  it("refuses an Issuer that is not the connection's IdP entity ID, or none", () => {
    expect(reasonOf(() => slo.checkIssuer(signedRequest(), X))).toBe('passed');
    expect(reasonOf(() => slo.checkIssuer(signedRequest({ issuer: 'https://other.example' }), X))).toBe('issuer_mismatch');
    expect(reasonOf(() => slo.checkIssuer(signedRequest({ issuer: null }), X))).toBe('issuer_mismatch');
  });
});

describe('9 checkDestination', () => {
  it('refuses another Destination, or none', () => {
    expect(reasonOf(() => slo.checkDestination(signedRequest(), X))).toBe('passed');
    expect(reasonOf(() => slo.checkDestination(signedRequest({ destination: 'https://gh.example/api/auth/sso/evil/saml/slo' }), X))).toBe('destination_mismatch');
    expect(reasonOf(() => slo.checkDestination(signedRequest({ destination: null }), X))).toBe('destination_mismatch');
  });
});

describe('10 checkTimes', () => {
  const at = (ms: number) => new Date(NOW.getTime() + ms);
  it('accepts a fresh message and remembers it past its lifetime', () => {
    const until = slo.checkTimes(signedRequest(), X);
    expect(until.getTime()).toBeGreaterThan(NOW.getTime() + slo.MAX_MESSAGE_AGE_MS);
  });
  it('refuses NotOnOrAfter passed, an IssueInstant too old or in the future, and a missing IssueInstant', () => {
    expect(reasonOf(() => slo.checkTimes(signedRequest({ issueInstant: at(-120_000), notOnOrAfter: at(-61_000) }), X))).toBe('expired');
    expect(reasonOf(() => slo.checkTimes(signedRequest({ issueInstant: at(-120_000), notOnOrAfter: at(-30_000) }), X))).toBe('passed');
    expect(reasonOf(() => slo.checkTimes(signedRequest({ issueInstant: at(-slo.MAX_MESSAGE_AGE_MS - 61_000), notOnOrAfter: null }), X))).toBe('expired');
    expect(reasonOf(() => slo.checkTimes(signedRequest({ issueInstant: at(61_000) }), X))).toBe('not_yet_valid');
    expect(reasonOf(() => slo.checkTimes(signedRequest({ issueInstant: at(59_000) }), X))).toBe('passed');
    const noInstant = signedRequest();
    noInstant.removeAttribute('IssueInstant');
    expect(reasonOf(() => slo.checkTimes(noInstant, X))).toBe('malformed');
  });
});

describe('11 readLogoutRequest', () => {
  it('reads the NameID, its Format and the SessionIndexes', () => {
    expect(slo.readLogoutRequest(signedRequest({ sessionIndexes: ['_a', '_b'] }))).toMatchObject({
      nameId: 'alice@acme.example', nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', nameQualifier: null, sessionIndexes: ['_a', '_b'],
    });
  });
  it('refuses a request without a NameID, or with an empty SessionIndex', () => {
    const noName = signedRequest();
    noName.removeChild(noName.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'NameID')[0]!);
    expect(reasonOf(() => slo.readLogoutRequest(noName))).toBe('subject_missing');
    expect(reasonOf(() => slo.readLogoutRequest(signedRequest({ sessionIndexes: [''] })))).toBe('malformed');
  });
});

describe('12 readLogoutResponse', () => {
  const response = (status: string, inResponseTo: string | null = '_req1') => {
    const xml = buildLogoutResponse({ id: '_r1', issueInstant: NOW, destination: SLO_URL, issuer: IDP, inResponseTo, status });
    return slo.verifySignature(parsedRedirect(redirectQuery('SAMLResponse', xml)), X);
  };
  it('reads InResponseTo of a Success; refuses another status and a response to nothing', () => {
    expect(slo.readLogoutResponse(response('urn:oasis:names:tc:SAML:2.0:status:Success'))).toMatchObject({ id: '_r1', inResponseTo: '_req1', partial: false });
    expect(reasonOf(() => slo.readLogoutResponse(response('urn:oasis:names:tc:SAML:2.0:status:Requester')))).toBe('status_not_success');
    expect(reasonOf(() => slo.readLogoutResponse(response('urn:oasis:names:tc:SAML:2.0:status:Success', null)))).toBe('in_response_to_unknown');
  });
});
