import { X509Certificate, verify } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import * as acs from '../../sso/saml/acs-checks.js';
import { SsoLoginError, type SamlFailureReason } from '../../sso/errors.js';
import { NS, attr, child, children, descendants, parseUntrustedXml, textOf, XmlRefused } from '../../sso/saml/xml.js';

/**
 * The checks of a SAML Single Logout message arriving at `/api/auth/sso/{slug}/saml/slo` (SPEC
 * §8): the IdP's LogoutRequest (IdP-initiated) or its LogoutResponse (answer to ours), over the
 * HTTP-Redirect or HTTP-POST binding. Each is a small function that passes or throws an
 * SsoLoginError with its own reason. `service.ts` runs them in this order:
 *
 *   1  checkSize               response_too_large
 *   2  readRedirectQuery |     malformed            (exactly one SAMLRequest/SAMLResponse; the
 *      readPostForm                                   raw query octets the signature covers)
 *   3  decodeMessage           malformed | response_too_large (DEFLATE output capped)
 *   4  parseMessage            doctype_refused | malformed
 *   5  refuseWeakAlgorithms    algorithm_refused    (SHA-1, #WithComments, unknown)
 *   6  requireSignature        signature_missing    (node-saml alone accepts unsigned messages)
 *   7  verifySignature         signature_invalid    (pinned IdP certificates only)
 *   -- from here on only the signed content is read; a refusal is answered with a signed
 *      LogoutResponse carrying a failure status (the IdP is authenticated)
 *   8  checkIssuer             issuer_mismatch
 *   9  checkDestination        destination_mismatch
 *  10  checkTimes              expired | not_yet_valid | malformed
 *  11  readLogoutRequest       subject_missing | malformed
 *  12  readLogoutResponse      in_response_to_unknown | status_not_success
 *  then, in service.ts: the message ID's replay key (replayed), the NameID's identity at this
 *  connection (nameid_unknown) or our pending LogoutRequest (in_response_to_unknown).
 */

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_INFLATED_BYTES = 256 * 1024;
/** An IssueInstant older than this (plus the skew) is refused; replay keys live as long. */
export const MAX_MESSAGE_AGE_MS = 5 * 60_000;
export const CLOCK_SKEW_MS = acs.CLOCK_SKEW_MS;

const fail = (reason: SamlFailureReason, message: string, cause?: unknown) => new SsoLoginError(reason, message, cause === undefined ? {} : { cause });

export type SloKind = 'SAMLRequest' | 'SAMLResponse';

/** A message as it arrived. */
export interface Incoming {
  binding: 'redirect' | 'post';
  kind: SloKind;
  /** base64 (POST) or base64 of DEFLATE (Redirect), decoded from the URL/form encoding. */
  value: string;
  relayState: string | null;
  /** Redirect binding: the decoded SigAlg and Signature, and the exact octets they sign. */
  sigAlg: string | null;
  signature: string | null;
  signedOctets: string | null;
}

export interface Parsed {
  incoming: Incoming;
  xml: string;
  doc: Document;
  root: Element;
}

export interface SloExpectations {
  idpEntityId: string;
  idpCertificates: string[];
  /** This organization's SLO URL (the Destination the IdP must name). */
  sloUrl: string;
  now: Date;
}

// 1
export function checkSize(byteLength: number): void {
  if (byteLength > MAX_MESSAGE_BYTES) throw fail('response_too_large', `The Single Logout message is larger than ${MAX_MESSAGE_BYTES / 1024} KiB and was not read`);
}

const formDecode = (raw: string) => {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch (e) {
    throw fail('malformed', 'The query string is not valid URL encoding', e);
  }
};

function pickKind(has: (k: string) => boolean): SloKind {
  const req = has('SAMLRequest');
  const res = has('SAMLResponse');
  if (req === res) throw fail('malformed', req ? 'The message carries both SAMLRequest and SAMLResponse' : 'The message carries no SAMLRequest or SAMLResponse');
  return req ? 'SAMLRequest' : 'SAMLResponse';
}

// 2 (Redirect) — Bindings §3.4.4.1: the signature covers the raw, still URL-encoded
// `SAMLRequest=…&RelayState=…&SigAlg=…` as they arrived, in this order; each at most once.
export function readRedirectQuery(rawQuery: string): Incoming {
  const raw = new Map<string, string>();
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = formDecode(eq < 0 ? part : part.slice(0, eq));
    if (!['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature'].includes(key)) continue;
    if (raw.has(key)) throw fail('malformed', `The query string carries ${key} more than once`);
    raw.set(key, eq < 0 ? '' : part.slice(eq + 1));
  }
  const kind = pickKind((k) => raw.has(k));
  const octets = [`${kind}=${raw.get(kind)}`];
  if (raw.has('RelayState')) octets.push(`RelayState=${raw.get('RelayState')}`);
  if (raw.has('SigAlg')) octets.push(`SigAlg=${raw.get('SigAlg')}`);
  const decoded = (k: string) => (raw.has(k) ? formDecode(raw.get(k)!) : null);
  return { binding: 'redirect', kind, value: decoded(kind)!, relayState: decoded('RelayState'), sigAlg: decoded('SigAlg'), signature: decoded('Signature'), signedOctets: octets.join('&') };
}

// 2 (POST)
export function readPostForm(form: URLSearchParams): Incoming {
  for (const k of ['SAMLRequest', 'SAMLResponse', 'RelayState']) if (form.getAll(k).length > 1) throw fail('malformed', `The form carries ${k} more than once`);
  const kind = pickKind((k) => form.has(k));
  return { binding: 'post', kind, value: form.get(kind) ?? '', relayState: form.get('RelayState'), sigAlg: null, signature: null, signedOctets: null };
}

function base64(value: string, what: string): Buffer {
  const b64 = value.replace(/[\r\n\t ]/g, '');
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw fail('malformed', `The ${what} is not base64`);
  return Buffer.from(b64, 'base64');
}

// 3 — the Redirect binding's DEFLATE output is capped (a small query must not inflate to gigabytes).
export function decodeMessage(incoming: Incoming): string {
  const bytes = base64(incoming.value, incoming.kind);
  let xml: string;
  if (incoming.binding === 'redirect') {
    try {
      xml = inflateRawSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8');
    } catch (e) {
      if (e instanceof RangeError || (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw fail('response_too_large', `The ${incoming.kind} inflates to more than ${MAX_INFLATED_BYTES / 1024} KiB`, e);
      throw fail('malformed', `The ${incoming.kind} is not DEFLATE-compressed (HTTP-Redirect binding)`, e);
    }
  } else xml = bytes.toString('utf8');
  if (!xml.trim().startsWith('<')) throw fail('malformed', `The ${incoming.kind} is not XML`);
  return xml;
}

// 4
export function parseMessage(incoming: Incoming, xml: string): Parsed {
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml);
  } catch (e) {
    if (e instanceof XmlRefused && e.why === 'doctype') throw fail('doctype_refused', 'The Single Logout message contains a DOCTYPE or ENTITY declaration, which is never accepted');
    throw fail('malformed', e instanceof Error ? e.message : 'The Single Logout message does not parse');
  }
  const root = doc.documentElement;
  const expected = incoming.kind === 'SAMLRequest' ? 'LogoutRequest' : 'LogoutResponse';
  if (root.namespaceURI !== NS.protocol || root.localName !== expected) throw fail('malformed', `The ${incoming.kind} is not a SAML 2.0 ${expected}`);
  if (!attr(root, 'ID')) throw fail('malformed', `The ${expected} has no ID`);
  return { incoming, xml, doc, root };
}

const REDIRECT_SIG_ALGS: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
};

// 5 — Redirect: the SigAlg; POST: every algorithm of every XML signature (the ACS's rule).
export function refuseWeakAlgorithms(p: Parsed): void {
  if (p.incoming.binding === 'redirect') {
    const alg = p.incoming.sigAlg;
    if (alg !== null && !REDIRECT_SIG_ALGS[alg]) {
      throw fail('algorithm_refused', `The SigAlg ${alg.slice(0, 100)} is refused: ${/sha1/i.test(alg) ? 'SHA-1 is refused' : 'it is not supported'}. Configure the IdP to sign with RSA-SHA256.`);
    }
    return;
  }
  acs.refuseWeakAlgorithms({ base64: '', doc: p.doc, response: p.root, assertion: null, encrypted: false });
}

// 6 — unsigned Single Logout messages are never accepted, whatever the binding.
export function requireSignature(p: Parsed): void {
  if (p.incoming.binding === 'redirect') {
    if (!p.incoming.sigAlg || !p.incoming.signature) throw fail('signature_missing', 'The Single Logout message carries no SigAlg/Signature: Gatehouse accepts signed logout messages only (configure the IdP to sign them)');
    return;
  }
  if (children(p.root, NS.dsig, 'Signature').length !== 1) throw fail('signature_missing', 'The Single Logout message carries no enveloped signature: Gatehouse accepts signed logout messages only (configure the IdP to sign them)');
}

function verifyRedirect(p: Parsed, certificates: string[]): boolean {
  const hash = REDIRECT_SIG_ALGS[p.incoming.sigAlg ?? '']!;
  const signature = base64(p.incoming.signature ?? '', 'Signature');
  const octets = Buffer.from(p.incoming.signedOctets ?? '', 'utf8');
  return certificates.some((pem) => {
    try {
      return verify(hash, octets, new X509Certificate(pem).publicKey, signature);
    } catch {
      return false;
    }
  });
}

/** The canonical signed root element, or null. Its one Reference must name the root (no wrapping). */
function verifyPost(p: Parsed, certificates: string[]): Element | null {
  const signature = children(p.root, NS.dsig, 'Signature')[0]!;
  const references = descendants(signature, NS.dsig, 'Reference');
  if (references.length !== 1 || attr(references[0]!, 'URI') !== `#${attr(p.root, 'ID')}`) return null;
  for (const pem of certificates) {
    const sx = new SignedXml({ publicCert: pem, getCertFromKeyInfo: () => null });
    try {
      sx.loadSignature(signature);
      if (!sx.checkSignature(p.xml)) continue;
    } catch {
      continue;
    }
    const signed = sx.getSignedReferences();
    if (signed.length !== 1) return null;
    const root = parseUntrustedXml(signed[0]!).documentElement;
    return root.namespaceURI === p.root.namespaceURI && root.localName === p.root.localName && attr(root, 'ID') === attr(p.root, 'ID') ? root : null;
  }
  return null;
}

// 7 — against the connection's pinned IdP certificates only (KeyInfo is never trusted). Returns
// the element to read from: for Redirect the whole message (the query signature covers it), for
// POST the canonical content xml-crypto verified.
export function verifySignature(p: Parsed, x: Pick<SloExpectations, 'idpCertificates'>): Element {
  const signed = p.incoming.binding === 'redirect' ? (verifyRedirect(p, x.idpCertificates) ? p.root : null) : verifyPost(p, x.idpCertificates);
  if (!signed) throw fail('signature_invalid', "The Single Logout message's signature does not verify with the pinned IdP certificate(s)");
  return signed;
}

// 8
export function checkIssuer(signed: Element, x: Pick<SloExpectations, 'idpEntityId'>): void {
  const issuer = textOf(child(signed, NS.assertion, 'Issuer'));
  if (issuer !== x.idpEntityId) throw fail('issuer_mismatch', `The ${signed.localName} was issued by "${(issuer ?? '(none)').slice(0, 200)}", not by this connection's IdP (${x.idpEntityId})`);
}

// 9 — Bindings §3.4.5.2 / §3.5.5.2: a signed message names its Destination.
export function checkDestination(signed: Element, x: Pick<SloExpectations, 'sloUrl'>): void {
  const destination = attr(signed, 'Destination');
  if (destination !== x.sloUrl) throw fail('destination_mismatch', `The ${signed.localName} is addressed to ${(destination ?? '(no Destination)').slice(0, 300)}, not to this Single Logout service (${x.sloUrl})`);
}

function instant(value: string | null, what: string): number | null {
  if (value === null) return null;
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw fail('malformed', `${what} is not a valid time`);
  return ms;
}

// 10 — IssueInstant within 5 minutes (± 60 s of skew); NotOnOrAfter (requests) not passed.
// Returns until when the message's ID must be remembered.
export function checkTimes(signed: Element, x: Pick<SloExpectations, 'now'>): Date {
  const now = x.now.getTime();
  const issued = instant(attr(signed, 'IssueInstant'), 'IssueInstant');
  if (issued === null) throw fail('malformed', `The ${signed.localName} has no IssueInstant`);
  if (issued > now + CLOCK_SKEW_MS) throw fail('not_yet_valid', `The ${signed.localName} was issued in the future (${new Date(issued).toISOString()}): check the clocks of the IdP and of Gatehouse`);
  if (issued < now - MAX_MESSAGE_AGE_MS - CLOCK_SKEW_MS) throw fail('expired', `The ${signed.localName} was issued at ${new Date(issued).toISOString()}, more than ${MAX_MESSAGE_AGE_MS / 60_000} minutes ago`);
  const until = instant(attr(signed, 'NotOnOrAfter'), 'NotOnOrAfter');
  if (until !== null && now - CLOCK_SKEW_MS >= until) throw fail('expired', `The ${signed.localName} expired at ${new Date(until).toISOString()}`);
  return new Date(Math.max(issued + MAX_MESSAGE_AGE_MS, until ?? 0) + 2 * CLOCK_SKEW_MS);
}

export interface LogoutRequestValues {
  id: string;
  nameId: string;
  nameIdFormat: string | null;
  nameQualifier: string | null;
  spNameQualifier: string | null;
  /** Empty: every session of the principal. */
  sessionIndexes: string[];
}

// 11 — every text node, so a comment cannot cut the NameID short (read from the signed content).
export function readLogoutRequest(signed: Element): LogoutRequestValues {
  const nameIdEl = child(signed, NS.assertion, 'NameID');
  const nameId = textOf(nameIdEl);
  if (!nameIdEl || !nameId) {
    const encrypted = child(signed, NS.assertion, 'EncryptedID') ? ' (an EncryptedID is not supported: configure the IdP to send the NameID in clear)' : '';
    throw fail('subject_missing', `The LogoutRequest has no NameID${encrypted}`);
  }
  if (nameId.length > 1024) throw fail('subject_missing', 'The NameID is longer than 1024 characters');
  const sessionIndexes = children(signed, NS.protocol, 'SessionIndex').map((s) => textOf(s) ?? '');
  if (sessionIndexes.some((s) => !s || s.length > 256) || sessionIndexes.length > 20) throw fail('malformed', 'A SessionIndex is empty or too long, or there are more than 20');
  return {
    id: attr(signed, 'ID')!,
    nameId,
    nameIdFormat: attr(nameIdEl, 'Format'),
    nameQualifier: attr(nameIdEl, 'NameQualifier'),
    spNameQualifier: attr(nameIdEl, 'SPNameQualifier'),
    sessionIndexes,
  };
}

export interface LogoutResponseValues {
  id: string;
  inResponseTo: string;
  /** Success with a PartialLogout sub-status counts as success (the IdP ended its own session). */
  partial: boolean;
}

// 12
export function readLogoutResponse(signed: Element): LogoutResponseValues {
  const inResponseTo = attr(signed, 'InResponseTo');
  if (!inResponseTo) throw fail('in_response_to_unknown', 'The LogoutResponse names no request (InResponseTo)');
  const status = child(signed, NS.protocol, 'Status');
  const code = status ? child(status, NS.protocol, 'StatusCode') : null;
  const value = attr(code, 'Value');
  const sub = code ? attr(child(code, NS.protocol, 'StatusCode'), 'Value') : null;
  if (value !== 'urn:oasis:names:tc:SAML:2.0:status:Success') {
    const words = [value, sub].filter(Boolean).map((v) => v!.replace(/^.*:/, '')).join('/') || 'none';
    throw fail('status_not_success', `The IdP answered the LogoutRequest with status ${words}: it may not have ended its session`);
  }
  return { id: attr(signed, 'ID')!, inResponseTo, partial: sub === 'urn:oasis:names:tc:SAML:2.0:status:PartialLogout' };
}
