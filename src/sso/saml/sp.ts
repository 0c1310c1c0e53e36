import { SAML } from '@node-saml/node-saml';
import { pemBody } from './certs.js';
import { escapeXml } from './xml.js';

/** What this SP is for one organization: its URLs, its entity ID and its key pair. */
export interface SpDescriptor {
  spEntityId: string;
  acsUrl: string;
  /** The Single Logout service (HTTP-Redirect and HTTP-POST bindings). */
  sloUrl: string;
  certificatePem: string;
  /** Unsealed only when needed (signing an AuthnRequest). */
  privateKey: () => string;
  signAuthnRequests: boolean;
}

function keyDescriptor(use: 'signing' | 'encryption', certificatePem: string, extra = '') {
  return `<md:KeyDescriptor use="${use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${pemBody(certificatePem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>${extra}</md:KeyDescriptor>`;
}

/**
 * SP metadata (SAML Metadata §2.4.4): entity ID, the ACS with the HTTP-POST binding, the SP
 * certificate for signing and for encryption, AuthnRequestsSigned as configured and
 * WantAssertionsSigned="true", and the SingleLogoutService (HTTP-Redirect and HTTP-POST, SPEC §8).
 */
export function spMetadataXml(sp: SpDescriptor): string {
  const encryptionMethods = ['http://www.w3.org/2009/xmlenc11#aes256-gcm', 'http://www.w3.org/2009/xmlenc11#aes128-gcm', 'http://www.w3.org/2001/04/xmlenc#aes256-cbc', 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p']
    .map((a) => `<md:EncryptionMethod Algorithm="${a}"/>`)
    .join('');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(sp.spEntityId)}">`,
    `<md:SPSSODescriptor AuthnRequestsSigned="${sp.signAuthnRequests}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">`,
    keyDescriptor('signing', sp.certificatePem),
    keyDescriptor('encryption', sp.certificatePem, encryptionMethods),
    `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${escapeXml(sp.sloUrl)}"/>`,
    `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(sp.sloUrl)}"/>`,
    '<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>',
    '<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>',
    `<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(sp.acsUrl)}" index="0" isDefault="true"/>`,
    '</md:SPSSODescriptor>',
    '</md:EntityDescriptor>',
    '',
  ].join('\n');
}

export type AuthnRequestOutcome = { binding: 'redirect'; url: string } | { binding: 'post'; url: string; fields: Record<string, string> };

/**
 * The AuthnRequest, built and (when configured) signed by node-saml: HTTP-Redirect (DEFLATE +
 * base64, detached RSA-SHA256 query signature) or HTTP-POST (base64 XML with an enveloped
 * signature). `id` is the request ID the ACS will see again as InResponseTo. No RelayState: the
 * pending flow is found by InResponseTo, so nothing has to travel through the browser.
 */
export async function buildAuthnRequest(sp: SpDescriptor, idp: { ssoUrl: string; certificates: string[] }, binding: 'redirect' | 'post', id: string): Promise<AuthnRequestOutcome> {
  const saml = new SAML({
    entryPoint: idp.ssoUrl,
    issuer: sp.spEntityId,
    callbackUrl: sp.acsUrl,
    idpCert: idp.certificates,
    generateUniqueId: () => id,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    authnRequestBinding: binding === 'post' ? 'HTTP-POST' : 'HTTP-Redirect',
    skipRequestCompression: binding === 'post',
    ...(sp.signAuthnRequests ? { privateKey: sp.privateKey() } : {}),
  });
  if (binding === 'redirect') return { binding, url: await saml.getAuthorizeUrlAsync('', undefined, {}) };
  const message = await saml.getAuthorizeMessageAsync('', undefined, {});
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(message)) if (typeof v === 'string' && v) fields[k] = v;
  return { binding, url: idp.ssoUrl, fields };
}
