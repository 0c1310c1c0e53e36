import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { escapeXml } from '../../sso/saml/xml.js';

/**
 * SAML 2.0 Single Logout messages Gatehouse sends (SAML Core §3.7, Bindings §3.4): a
 * LogoutRequest (SP-initiated) and a LogoutResponse (answer to the IdP's request), both over the
 * HTTP-Redirect binding: DEFLATE + base64 in the query, signed with the organization's SP key over
 * the exact query octets `SAML…=…&RelayState=…&SigAlg=…` (RSA-SHA256).
 */

export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const STATUS = {
  success: 'urn:oasis:names:tc:SAML:2.0:status:Success',
  requester: 'urn:oasis:names:tc:SAML:2.0:status:Requester',
  responder: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
  unknownPrincipal: 'urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal',
  partialLogout: 'urn:oasis:names:tc:SAML:2.0:status:PartialLogout',
} as const;

const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** An xs:ID: `_` + 32 hex digits (must not start with a digit). */
export const newMessageId = () => `_${randomBytes(16).toString('hex')}`;

export interface LogoutRequestSpec {
  id: string;
  issueInstant: Date;
  /** NotOnOrAfter = issueInstant + this. */
  lifetimeMs: number;
  issuer: string;
  destination: string;
  nameId: string;
  nameIdFormat: string | null;
  nameQualifier: string | null;
  spNameQualifier: string | null;
  sessionIndex: string | null;
}

const optAttr = (name: string, value: string | null) => (value === null ? '' : ` ${name}="${escapeXml(value)}"`);

export function logoutRequestXml(r: LogoutRequestSpec): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="${PROTOCOL_NS}" xmlns:saml="${ASSERTION_NS}" ID="${escapeXml(r.id)}" Version="2.0" ` +
    `IssueInstant="${r.issueInstant.toISOString()}" NotOnOrAfter="${new Date(r.issueInstant.getTime() + r.lifetimeMs).toISOString()}" Destination="${escapeXml(r.destination)}">` +
    `<saml:Issuer>${escapeXml(r.issuer)}</saml:Issuer>` +
    `<saml:NameID${optAttr('Format', r.nameIdFormat)}${optAttr('NameQualifier', r.nameQualifier)}${optAttr('SPNameQualifier', r.spNameQualifier)}>${escapeXml(r.nameId)}</saml:NameID>` +
    (r.sessionIndex === null ? '' : `<samlp:SessionIndex>${escapeXml(r.sessionIndex)}</samlp:SessionIndex>`) +
    `</samlp:LogoutRequest>`
  );
}

export interface LogoutResponseSpec {
  id: string;
  issueInstant: Date;
  issuer: string;
  destination: string;
  inResponseTo: string;
  status: string;
  subStatus?: string | null;
  message?: string | null;
}

export function logoutResponseXml(r: LogoutResponseSpec): string {
  const sub = r.subStatus ? `<samlp:StatusCode Value="${escapeXml(r.subStatus)}"/>` : '';
  return (
    `<samlp:LogoutResponse xmlns:samlp="${PROTOCOL_NS}" xmlns:saml="${ASSERTION_NS}" ID="${escapeXml(r.id)}" Version="2.0" ` +
    `IssueInstant="${r.issueInstant.toISOString()}" Destination="${escapeXml(r.destination)}" InResponseTo="${escapeXml(r.inResponseTo)}">` +
    `<saml:Issuer>${escapeXml(r.issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${escapeXml(r.status)}">${sub}</samlp:StatusCode>` +
    (r.message ? `<samlp:StatusMessage>${escapeXml(r.message.slice(0, 200))}</samlp:StatusMessage>` : '') +
    `</samlp:Status></samlp:LogoutResponse>`
  );
}

/**
 * The HTTP-Redirect binding URL (Bindings §3.4.4.1): `location` plus SAMLRequest / SAMLResponse
 * (DEFLATE, base64, URL-encoded), RelayState, SigAlg and the Signature over exactly those octets.
 */
export function redirectBindingUrl(location: string, kind: 'SAMLRequest' | 'SAMLResponse', xml: string, privateKeyPem: string, relayState: string | null = null): string {
  const parts = [`${kind}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`];
  if (relayState) parts.push(`RelayState=${encodeURIComponent(relayState)}`);
  parts.push(`SigAlg=${encodeURIComponent(RSA_SHA256)}`);
  const signed = parts.join('&');
  const signature = sign('sha256', Buffer.from(signed, 'utf8'), createPrivateKey(privateKeyPem)).toString('base64');
  return `${location}${location.includes('?') ? '&' : '?'}${signed}&Signature=${encodeURIComponent(signature)}`;
}
