import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { SignedXml } from 'xml-crypto';
import { generateSpKeyPair } from '../../src/sso/saml/certs.js';

/**
 * A minimal test IdP for SAML: a key pair with a self-signed certificate, and a builder for
 * SAML responses signed with it (RSA-SHA256, exclusive c14n), optionally encrypted to the SP.
 * The attack suite has its own, bigger toolkit (saml-forge.ts); this is what the happy paths need.
 */
export interface TestSamlIdp {
  entityId: string;
  ssoUrl: string;
  privateKeyPem: string;
  certificatePem: string;
}

export async function createTestSamlIdp(entityId = 'https://idp.acme.test/saml/metadata', ssoUrl = 'https://idp.acme.test/saml/sso'): Promise<TestSamlIdp> {
  const { privateKeyPem, certificatePem } = await generateSpKeyPair(`Test IdP ${entityId}`, new Date());
  return { entityId, ssoUrl, privateKeyPem, certificatePem };
}

export interface ResponseSpec {
  idp: TestSamlIdp;
  acsUrl: string;
  audience: string;
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string | string[]>;
  inResponseTo?: string | null;
  now: Date;
  /** Lifetime of the assertion (NotOnOrAfter − now); default 5 minutes. */
  lifetimeMs?: number;
  /** Response Destination; null omits it. Default: acsUrl. */
  destination?: string | null;
  recipient?: string;
  issuer?: string;
  assertionId?: string;
  /** Which element(s) to sign. Default: the assertion. */
  sign?: 'assertion' | 'response' | 'both' | 'none';
  /** Encrypt the assertion (RSA-OAEP + AES-256-GCM) to this SP certificate. */
  encryptTo?: string;
  statusCode?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const newSamlId = () => `_${randomBytes(16).toString('hex')}`;

export function assertionXml(spec: ResponseSpec): string {
  const now = spec.now;
  const until = new Date(now.getTime() + (spec.lifetimeMs ?? 5 * 60_000)).toISOString();
  const from = new Date(now.getTime() - 30_000).toISOString();
  const irt = spec.inResponseTo ? ` InResponseTo="${esc(spec.inResponseTo)}"` : '';
  const attrs = Object.entries(spec.attributes ?? {})
    .map(([name, v]) => `<saml:Attribute Name="${esc(name)}">${(Array.isArray(v) ? v : [v]).map((x) => `<saml:AttributeValue>${esc(x)}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
    .join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${spec.assertionId ?? newSamlId()}" Version="2.0" IssueInstant="${now.toISOString()}">` +
    `<saml:Issuer>${esc(spec.issuer ?? spec.idp.entityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${spec.nameIdFormat ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent'}">${esc(spec.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${until}" Recipient="${esc(spec.recipient ?? spec.acsUrl)}"${irt}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${from}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${esc(spec.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${newSamlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`
  );
}

/** Enveloped RSA-SHA256 signature of the element `localName` (placed after its Issuer). */
export function signElement(xml: string, localName: 'Assertion' | 'Response', idp: TestSamlIdp): string {
  const sig = new SignedXml({
    privateKey: idp.privateKeyPem,
    publicCert: idp.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  const target = `//*[local-name(.)='${localName}']`;
  sig.addReference({
    xpath: target,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(xml, { location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

type Encrypt = (content: string, options: Record<string, unknown>, cb: (err: Error | null, result: string) => void) => void;
const xmlenc = createRequire(import.meta.url)('xml-encryption') as { encrypt: Encrypt };

export async function encryptAssertion(assertion: string, spCertificatePem: string): Promise<string> {
  const encrypted = await new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(assertion, {
      rsa_pub: spCertificatePem,
      pem: spCertificatePem,
      encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
      keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
    }, (err, result) => (err ? reject(err) : resolve(result))),
  );
  return `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${encrypted}</saml:EncryptedAssertion>`;
}

/** The whole Response as XML (not yet base64). */
export async function buildResponseXml(spec: ResponseSpec): Promise<string> {
  const sign = spec.sign ?? 'assertion';
  let assertion = assertionXml(spec);
  if (sign === 'assertion' || sign === 'both') assertion = signElement(assertion, 'Assertion', spec.idp);
  if (spec.encryptTo) assertion = await encryptAssertion(assertion, spec.encryptTo);
  const destination = spec.destination === undefined ? spec.acsUrl : spec.destination;
  const irt = spec.inResponseTo ? ` InResponseTo="${esc(spec.inResponseTo)}"` : '';
  let response =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${newSamlId()}" Version="2.0" IssueInstant="${spec.now.toISOString()}"` +
    `${destination === null ? '' : ` Destination="${esc(destination)}"`}${irt}>` +
    `<saml:Issuer>${esc(spec.issuer ?? spec.idp.entityId)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${spec.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`;
  if (sign === 'response' || sign === 'both') response = signElement(response, 'Response', spec.idp);
  return response;
}

export async function buildResponse(spec: ResponseSpec): Promise<string> {
  return Buffer.from(await buildResponseXml(spec), 'utf8').toString('base64');
}

/** The form body an IdP's browser POST carries to the ACS. */
export function acsForm(samlResponse: string, relayState?: string): string {
  const form = new URLSearchParams({ SAMLResponse: samlResponse });
  if (relayState !== undefined) form.set('RelayState', relayState);
  return form.toString();
}
