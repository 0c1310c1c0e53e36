import { SAML } from '@node-saml/node-saml';
import { decryptXml } from '@node-saml/node-saml/lib/xml.js';
import { SsoLoginError, type SamlFailureReason } from '../errors.js';
import { NS, attr, child, children, descendants, parseUntrustedXml, textOf, XmlRefused } from './xml.js';

/**
 * The SAML ACS checks of SPEC §4.4 and §11, each a small named function that either passes or
 * throws an SsoLoginError with its own stable reason. `service.ts` runs them in this order:
 *
 *   1  checkSize               response_too_large
 *   2  decodeResponse          malformed
 *   3  parseResponse           doctype_refused | malformed
 *   4  checkStatus             status_not_success
 *   5  checkAssertionCount     assertion_count
 *   6  decryptAssertion        decryption_failed | assertion_count
 *   7  refuseWeakAlgorithms    algorithm_refused
 *   8  requireSignature        signature_missing
 *   9  verifySignature         signature_invalid           (node-saml, pinned certificates only)
 *  10  readSignedAssertion     malformed                   (from here on: only the signed content)
 *  11  checkIssuer             issuer_mismatch
 *  12  checkDestination        destination_mismatch
 *  13  checkRecipient          recipient_mismatch
 *  14  checkAudience           audience_mismatch
 *  15  checkTimes              expired | not_yet_valid
 *  16  readSubject             subject_missing
 *  then, in service.ts: replay peek (replayed), InResponseTo (in_response_to_unknown |
 *  unsolicited_not_allowed), then one transaction: the atomic replay insert and flow consume,
 *  provisioning, the session (a server-side failure spends neither the assertion nor the request).
 */

export const MAX_RESPONSE_BYTES = 512 * 1024;
export const CLOCK_SKEW_MS = 60_000;

const fail = (reason: SamlFailureReason, message: string, cause?: unknown) => new SsoLoginError(reason, message, cause === undefined ? {} : { cause });

/** What the checks know about the connection. */
export interface AcsExpectations {
  idpEntityId: string;
  idpCertificates: string[];
  spEntityId: string;
  acsUrl: string;
  /** The SP private key, decrypted from the key ring only when an assertion is encrypted. */
  spPrivateKey: () => string;
  now: Date;
  /** Where built node-saml validators are kept for the next response (service.ts keeps one per process); none: built each time. */
  validators?: SamlValidators;
}

/**
 * node-saml validators by what configures them (ACS URL, SP entity ID, pinned certificates, which
 * signatures are present): building one costs as much as several of the checks here, and a
 * validator keeps nothing from one response to the next. At most `max` are kept, the oldest
 * dropped first. One for an encrypted assertion, which holds the SP private key, is never kept.
 */
export type SamlValidators = (key: string, build: () => SAML) => SAML;

export function createSamlValidators(max = 256): SamlValidators {
  const kept = new Map<string, SAML>();
  return (key, build) => {
    const found = kept.get(key);
    if (found) return found;
    const built = build();
    if (kept.size >= max) kept.delete(kept.keys().next().value!);
    kept.set(key, built);
    return built;
  };
}

/** The unsigned envelope, parsed. */
export interface ParsedResponse {
  /** The posted SAMLResponse (node-saml verifies from it). */
  base64: string;
  doc: Document;
  response: Element;
  /** The plaintext assertion element (in `doc`) or the decrypted one (in its own document). */
  assertion: Element | null;
  encrypted: boolean;
}

// 1
export function checkSize(byteLength: number): void {
  if (byteLength > MAX_RESPONSE_BYTES) throw fail('response_too_large', `The SAML response is larger than ${MAX_RESPONSE_BYTES / 1024} KiB and was not read`);
}

// 2
export function decodeResponse(samlResponse: string | undefined): { base64: string; xml: string } {
  if (!samlResponse) throw fail('malformed', 'The IdP posted no SAMLResponse');
  const base64 = samlResponse.replace(/[\r\n\t ]/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) throw fail('malformed', 'The SAMLResponse is not base64');
  const xml = Buffer.from(base64, 'base64').toString('utf8');
  if (!xml.trim().startsWith('<')) throw fail('malformed', 'The SAMLResponse is not XML');
  return { base64, xml };
}

// 3
export function parseResponse(decoded: { base64: string; xml: string }): ParsedResponse {
  let doc: Document;
  try {
    doc = parseUntrustedXml(decoded.xml);
  } catch (e) {
    if (e instanceof XmlRefused && e.why === 'doctype') throw fail('doctype_refused', 'The SAML response contains a DOCTYPE or ENTITY declaration, which is never accepted');
    throw fail('malformed', e instanceof Error ? e.message : 'The SAML response does not parse');
  }
  const response = doc.documentElement;
  if (response.namespaceURI !== NS.protocol || response.localName !== 'Response') throw fail('malformed', 'The posted message is not a SAML 2.0 Response');
  return { base64: decoded.base64, doc, response, assertion: null, encrypted: false };
}

// 4 — a refusal, so it may read the (possibly unsigned) status of an IdP error response.
export function checkStatus(p: ParsedResponse): void {
  const status = child(p.response, NS.protocol, 'Status');
  const code = status ? child(status, NS.protocol, 'StatusCode') : null;
  const value = attr(code, 'Value');
  if (value !== 'urn:oasis:names:tc:SAML:2.0:status:Success') {
    const sub = code ? attr(child(code, NS.protocol, 'StatusCode'), 'Value') : null;
    const message = textOf(status ? child(status, NS.protocol, 'StatusMessage') : null);
    const words = [value, sub].filter(Boolean).map((v) => v!.replace(/^.*:/, '')).join('/') || 'none';
    throw fail('status_not_success', `The IdP answered with status ${words}${message ? ` (${message.replace(/[^\x20-\x7e]/g, '').slice(0, 200)})` : ''}: the IdP refused or failed the sign-in`);
  }
}

// 5 — anywhere in the document, so an assertion wrapped in Extensions, Advice or ds:Object counts too.
export function checkAssertionCount(p: ParsedResponse): ParsedResponse {
  const plain = descendants(p.doc, NS.assertion, 'Assertion');
  const encrypted = descendants(p.doc, NS.assertion, 'EncryptedAssertion');
  const total = plain.length + encrypted.length;
  if (total !== 1) throw fail('assertion_count', total === 0 ? 'The SAML response contains no assertion' : `The SAML response contains ${total} assertions; exactly one is accepted`);
  const only = (plain[0] ?? encrypted[0])!;
  if (only.parentNode !== p.response) throw fail('assertion_count', 'The assertion is not a direct child of the Response');
  return { ...p, assertion: plain[0] ?? null, encrypted: encrypted.length === 1 };
}

const OAEP = new Set(['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p', 'http://www.w3.org/2009/xmlenc11#rsa-oaep']);

// 6
export async function decryptAssertion(p: ParsedResponse, spPrivateKey: () => string): Promise<ParsedResponse> {
  if (!p.encrypted) return p;
  const encrypted = descendants(p.doc, NS.assertion, 'EncryptedAssertion')[0]!;
  const transports = descendants(encrypted, NS.xenc, 'EncryptedKey').map((k) => attr(child(k, NS.xenc, 'EncryptionMethod'), 'Algorithm'));
  if (transports.length !== 1 || !OAEP.has(transports[0] ?? '')) {
    throw fail('decryption_failed', `The assertion's key is not encrypted with RSA-OAEP (${transports.join(', ') || 'no EncryptedKey'}); configure the IdP to use RSA-OAEP`);
  }
  let decrypted: Document;
  try {
    const xml = await decryptXml(encrypted.toString(), spPrivateKey());
    decrypted = parseUntrustedXml(xml);
  } catch (e) {
    // Every failure of decryption or of the decrypted content is the same answer (no padding oracle).
    throw fail('decryption_failed', 'The encrypted assertion could not be decrypted with this organization\'s SP key: give the IdP the encryption certificate from the SP metadata', e);
  }
  const root = decrypted.documentElement;
  if (root.namespaceURI !== NS.assertion || root.localName !== 'Assertion' || descendants(decrypted, NS.assertion, 'Assertion').length !== 1) {
    throw fail('decryption_failed', 'The encrypted assertion does not contain exactly one assertion');
  }
  return { ...p, assertion: root };
}

const SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
]);
const DIGEST_METHODS = new Set(['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmldsig-more#sha384', 'http://www.w3.org/2001/04/xmlenc#sha512']);
const CANONICALIZATIONS = new Set([
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  'http://www.w3.org/2006/12/xml-c14n11',
]);
const TRANSFORMS = new Set([...CANONICALIZATIONS, 'http://www.w3.org/2000/09/xmldsig#enveloped-signature']);

// 7 — every SignatureMethod, DigestMethod, CanonicalizationMethod and Transform of every signature.
export function refuseWeakAlgorithms(p: ParsedResponse): void {
  const roots: Array<Document | Element> = [p.doc];
  if (p.encrypted && p.assertion) roots.push(p.assertion);
  for (const root of roots) {
    for (const sig of descendants(root, NS.dsig, 'Signature')) {
      const check = (localName: string, allowed: Set<string>, what: string) => {
        for (const el of descendants(sig, NS.dsig, localName)) {
          const alg = attr(el, 'Algorithm') ?? '';
          if (/sha1(\b|$)/i.test(alg) || /#?withcomments$/i.test(alg) || !allowed.has(alg)) {
            const why = /sha1/i.test(alg) ? 'SHA-1 is refused' : /withcomments/i.test(alg) ? '#WithComments canonicalization is refused' : 'it is not supported';
            throw fail('algorithm_refused', `The ${what} algorithm ${alg || '(none)'} is refused: ${why}. Configure the IdP to sign with RSA-SHA256 and SHA-256 digests.`);
          }
        }
      };
      check('SignatureMethod', SIGNATURE_METHODS, 'signature');
      check('DigestMethod', DIGEST_METHODS, 'digest');
      check('CanonicalizationMethod', CANONICALIZATIONS, 'canonicalization');
      check('Transform', TRANSFORMS, 'transform');
    }
  }
}

const hasSignature = (el: Element | null) => (el ? children(el, NS.dsig, 'Signature').length > 0 : false);

// 8
export function requireSignature(p: ParsedResponse): { responseSigned: boolean; assertionSigned: boolean } {
  const responseSigned = hasSignature(p.response);
  const assertionSigned = hasSignature(p.assertion);
  if (!responseSigned && !assertionSigned) throw fail('signature_missing', 'Neither the SAML response nor its assertion is signed: configure the IdP to sign the assertion (or the response)');
  return { responseSigned, assertionSigned };
}

// 9 — node-saml verifies against the pinned certificates only (xml-crypto ignores KeyInfo
// certificates unless told otherwise) and returns the signed assertion. Every signature that is
// present must verify; node-saml's own time, audience and InResponseTo checks are off because ours
// follow, on the clock of this process's deps and with the reasons above.
export async function verifySignature(p: ParsedResponse, signed: { responseSigned: boolean; assertionSigned: boolean }, x: AcsExpectations): Promise<string> {
  const build = () =>
    new SAML({
      callbackUrl: x.acsUrl,
      issuer: x.spEntityId,
      idpCert: x.idpCertificates,
      audience: false,
      acceptedClockSkewMs: -1,
      wantAuthnResponseSigned: signed.responseSigned,
      wantAssertionsSigned: signed.assertionSigned,
      ...(p.encrypted ? { decryptionPvk: x.spPrivateKey() } : {}),
    });
  const key = JSON.stringify([x.acsUrl, x.spEntityId, x.idpCertificates, signed.responseSigned, signed.assertionSigned]);
  const saml = p.encrypted || !x.validators ? build() : x.validators(key, build);
  let result;
  try {
    result = await saml.validatePostResponseAsync({ SAMLResponse: p.base64 });
  } catch (e) {
    // node-saml parses the times of the signed assertion after verifying it, and needs
    // NotOnOrAfter on Conditions and on the SubjectConfirmationData when they carry attributes.
    const message = e instanceof Error ? e.message : '';
    const missing = /^Error parsing (\w+): 'undefined'/.exec(message);
    if (missing) throw fail('expired', `The assertion has no ${missing[1]} on its Conditions or SubjectConfirmationData; configure the IdP to send it`, e);
    if (/^Error parsing |multiple conditions/.test(message)) throw fail('malformed', `The signed assertion is not usable: ${message.slice(0, 200)}`, e);
    throw fail('signature_invalid', 'The signature of the SAML response does not verify with the pinned IdP certificate(s): check that the certificate configured in Gatehouse is the one the IdP signs with', e);
  }
  const xml = result.profile?.getAssertionXml?.();
  if (!xml) throw fail('signature_invalid', 'The SAML response carries no signed assertion');
  return xml;
}

// 10 — from here on, every value comes from the signed assertion node-saml returned.
export function readSignedAssertion(xml: string): Element {
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml);
  } catch (e) {
    throw fail('malformed', 'The signed assertion does not parse', e);
  }
  const a = doc.documentElement;
  if (a.namespaceURI !== NS.assertion || a.localName !== 'Assertion') throw fail('malformed', 'The signed content is not an assertion');
  return a;
}

// 11
export function checkIssuer(p: ParsedResponse, assertion: Element, x: AcsExpectations): void {
  const responseIssuer = child(p.response, NS.assertion, 'Issuer');
  const assertionIssuer = textOf(child(assertion, NS.assertion, 'Issuer'));
  if (responseIssuer && textOf(responseIssuer) !== x.idpEntityId) {
    throw fail('issuer_mismatch', `The response was issued by "${textOf(responseIssuer)?.slice(0, 200)}", not by this connection's IdP (${x.idpEntityId})`);
  }
  if (assertionIssuer !== x.idpEntityId) {
    throw fail('issuer_mismatch', `The assertion was issued by "${(assertionIssuer ?? '(none)').slice(0, 200)}", not by this connection's IdP (${x.idpEntityId})`);
  }
}

// 12 — SAML Bindings §3.5.5.2: a signed response must name its Destination. An unsigned
// response (assertion signed) may omit it; the signed Recipient then binds the assertion here.
export function checkDestination(p: ParsedResponse, responseSigned: boolean, x: AcsExpectations): void {
  const destination = attr(p.response, 'Destination');
  if (destination === null) {
    if (responseSigned) throw fail('destination_mismatch', `The signed response has no Destination; it must be ${x.acsUrl}`);
    return;
  }
  if (destination !== x.acsUrl) throw fail('destination_mismatch', `The response is addressed to ${destination.slice(0, 300)}, not to this ACS (${x.acsUrl}): fix the ACS URL in the IdP`);
}

function bearerConfirmationData(assertion: Element): Element[] {
  const subject = child(assertion, NS.assertion, 'Subject');
  if (!subject) return [];
  return children(subject, NS.assertion, 'SubjectConfirmation')
    .filter((sc) => attr(sc, 'Method') === 'urn:oasis:names:tc:SAML:2.0:cm:bearer')
    .map((sc) => child(sc, NS.assertion, 'SubjectConfirmationData'))
    .filter((d): d is Element => d !== null);
}

// 13
export function checkRecipient(assertion: Element, x: AcsExpectations): Element {
  const data = bearerConfirmationData(assertion);
  const match = data.find((d) => attr(d, 'Recipient') === x.acsUrl);
  if (!match) {
    const got = data.map((d) => attr(d, 'Recipient') ?? '(none)').join(', ') || '(no bearer SubjectConfirmationData)';
    throw fail('recipient_mismatch', `The assertion's Recipient is ${got.slice(0, 300)}, not this ACS (${x.acsUrl}): fix the ACS / Recipient URL in the IdP`);
  }
  return match;
}

// 14 — every AudienceRestriction must name this SP exactly (SAML Core §2.5.1.4).
export function checkAudience(assertion: Element, x: AcsExpectations): void {
  const conditions = children(assertion, NS.assertion, 'Conditions');
  if (conditions.length > 1) throw fail('audience_mismatch', 'The assertion has several Conditions elements');
  const restrictions = conditions[0] ? children(conditions[0], NS.assertion, 'AudienceRestriction') : [];
  if (restrictions.length === 0) throw fail('audience_mismatch', `The assertion names no Audience; it must be ${x.spEntityId}`);
  for (const r of restrictions) {
    const audiences = children(r, NS.assertion, 'Audience').map((a) => textOf(a));
    if (!audiences.includes(x.spEntityId)) {
      throw fail('audience_mismatch', `The assertion is meant for ${audiences.join(', ').slice(0, 300) || '(no audience)'}, not for this SP (${x.spEntityId}): set the Audience / SP Entity ID in the IdP`);
    }
  }
}

function instant(value: string | null, what: string): number | null {
  if (value === null) return null;
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw fail('malformed', `${what} is not a valid time`);
  return ms;
}

// 15 — Conditions and the bearer SubjectConfirmationData, with at most 60 s of clock skew.
export function checkTimes(assertion: Element, confirmation: Element, x: AcsExpectations): Date {
  const now = x.now.getTime();
  const conditions = child(assertion, NS.assertion, 'Conditions');
  const windows = [
    { from: instant(attr(conditions, 'NotBefore'), 'Conditions NotBefore'), until: instant(attr(conditions, 'NotOnOrAfter'), 'Conditions NotOnOrAfter') },
    { from: instant(attr(confirmation, 'NotBefore'), 'SubjectConfirmationData NotBefore'), until: instant(attr(confirmation, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter') },
  ];
  const untils = windows.map((w) => w.until).filter((u): u is number => u !== null);
  if (untils.length === 0) throw fail('expired', 'The assertion has no NotOnOrAfter, so it would never expire; it is refused');
  for (const w of windows) {
    if (w.from !== null && now + CLOCK_SKEW_MS < w.from) throw fail('not_yet_valid', `The assertion is not valid before ${new Date(w.from).toISOString()}: check the clocks of the IdP and of Gatehouse`);
    if (w.until !== null && now - CLOCK_SKEW_MS >= w.until) throw fail('expired', `The assertion expired at ${new Date(w.until).toISOString()}: sign in again (or check the clocks)`);
  }
  return new Date(Math.max(...untils) + CLOCK_SKEW_MS);
}

// 16 — the NameID of the signed assertion; every text node, so a comment cannot cut it short.
export function readSubject(assertion: Element): { nameId: string; nameIdFormat: string | null } {
  const subject = child(assertion, NS.assertion, 'Subject');
  const nameIdEl = subject ? child(subject, NS.assertion, 'NameID') : null;
  const nameId = textOf(nameIdEl);
  if (!nameIdEl || !nameId) throw fail('subject_missing', 'The assertion has no NameID: configure the IdP to send a NameID (persistent recommended)');
  if (nameId.length > 1024) throw fail('subject_missing', 'The NameID is longer than 1024 characters');
  return { nameId, nameIdFormat: attr(nameIdEl, 'Format') };
}

/**
 * What Single Logout needs of the signed assertion (SPEC §8): the NameID's qualifiers and the
 * AuthnStatement's SessionIndex — read from the signed, canonical assertion like every value.
 */
export function readLogoutHint(assertion: Element): { nameQualifier: string | null; spNameQualifier: string | null; sessionIndex: string | null } {
  const subject = child(assertion, NS.assertion, 'Subject');
  const nameIdEl = subject ? child(subject, NS.assertion, 'NameID') : null;
  const statement = child(assertion, NS.assertion, 'AuthnStatement');
  const sessionIndex = attr(statement, 'SessionIndex');
  return {
    nameQualifier: attr(nameIdEl, 'NameQualifier'),
    spNameQualifier: attr(nameIdEl, 'SPNameQualifier'),
    sessionIndex: sessionIndex && sessionIndex.length <= 256 ? sessionIndex : null,
  };
}

/** Attribute name → values, from the signed assertion's AttributeStatements. */
export function readAttributes(assertion: Element): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
    for (const a of children(statement, NS.assertion, 'Attribute')) {
      const name = attr(a, 'Name');
      if (!name) continue;
      const values = children(a, NS.assertion, 'AttributeValue').map((v) => textOf(v) ?? '').filter((v) => v !== '');
      (out[name] ??= []).push(...values);
    }
  }
  return out;
}

/**
 * The request this response answers. The signed bearer SubjectConfirmationData's InResponseTo
 * counts; the Response's own InResponseTo counts only when the Response signature was verified
 * (an unsigned Response attribute is the attacker's to write: it must not turn an unsolicited
 * assertion into an answer to someone's pending request). Both present: they must agree.
 */
export function readInResponseTo(p: ParsedResponse, confirmation: Element, responseSigned: boolean): string | null {
  const signed = attr(confirmation, 'InResponseTo');
  const outer = attr(p.response, 'InResponseTo');
  if (signed && outer && signed !== outer) throw fail('in_response_to_unknown', 'The response and its assertion answer different requests');
  if (signed) return signed;
  if (outer && !responseSigned) {
    throw fail('in_response_to_unknown', 'Only the unsigned Response names the request it answers; the signed assertion does not (SubjectConfirmationData has no InResponseTo)');
  }
  return outer || null;
}

export function assertionId(assertion: Element): string {
  const id = attr(assertion, 'ID');
  if (!id) throw fail('malformed', 'The assertion has no ID');
  return id;
}
