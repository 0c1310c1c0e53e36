import { NS, attr, children, descendants, parseUntrustedXml, textOf, XmlRefused } from './xml.js';
import { toPem } from './certs.js';

export interface IdpMetadata {
  entityId: string;
  /** HTTP-Redirect SSO location if published, else HTTP-POST. */
  ssoUrl: string | null;
  /** Signing certificates (KeyDescriptor use="signing" or without use), PEM. */
  certificates: string[];
  /** The HTTP-Redirect SingleLogoutService location, if published (SP-initiated logout is sent over Redirect). */
  sloUrl: string | null;
}

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/**
 * Read the values Gatehouse needs from IdP metadata (pasted or fetched): entity ID, SSO URL,
 * signing certificates and the HTTP-Redirect SingleLogoutService. The metadata is not trusted for anything else; the admin sees the
 * resulting certificate fingerprints and can compare them with the IdP's console.
 */
export function parseIdpMetadata(xml: string): IdpMetadata {
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml);
  } catch (e) {
    throw new Error(e instanceof XmlRefused && e.why === 'doctype' ? 'The IdP metadata contains a DOCTYPE, which is refused' : 'The IdP metadata is not well-formed XML');
  }
  const entities = descendants(doc, NS.metadata, 'EntityDescriptor').filter((e) => children(e, NS.metadata, 'IDPSSODescriptor').length > 0);
  if (entities.length !== 1) throw new Error(entities.length ? 'The metadata describes several IdPs; paste the metadata of one' : 'The metadata has no EntityDescriptor with an IDPSSODescriptor');
  const entity = entities[0]!;
  const entityId = attr(entity, 'entityID');
  if (!entityId) throw new Error('The metadata EntityDescriptor has no entityID');
  const idp = children(entity, NS.metadata, 'IDPSSODescriptor')[0]!;
  const services = children(idp, NS.metadata, 'SingleSignOnService');
  const location = (binding: string) => attr(services.find((s) => attr(s, 'Binding') === binding) ?? null, 'Location');
  const certificates: string[] = [];
  for (const kd of children(idp, NS.metadata, 'KeyDescriptor')) {
    const use = attr(kd, 'use');
    if (use && use !== 'signing') continue;
    for (const c of descendants(kd, NS.dsig, 'X509Certificate')) {
      const b64 = textOf(c);
      if (b64) certificates.push(toPem(b64));
    }
  }
  const slo = children(idp, NS.metadata, 'SingleLogoutService').find((s) => attr(s, 'Binding') === REDIRECT) ?? null;
  return { entityId, ssoUrl: location(REDIRECT) ?? location(POST), certificates: [...new Set(certificates)], sloUrl: attr(slo, 'Location') };
}
