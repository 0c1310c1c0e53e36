import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ALG, IDP_KEYS, NS, samlId, signElement, type KeyPair } from './saml-forge.js';

/**
 * SAML Single Logout messages as an IdP (or an attacker) would build them, independent of
 * Gatehouse's own code: LogoutRequest / LogoutResponse XML with every field overridable, the
 * HTTP-Redirect binding query (signed with any key and SigAlg, or unsigned), the HTTP-POST
 * binding (enveloped signature via saml-forge's signElement), and a decoder + verifier for what
 * Gatehouse sends back.
 */

export interface LogoutRequestFields {
  id: string;
  issueInstant: Date;
  notOnOrAfter: Date | null;
  destination: string | null;
  issuer: string | null;
  nameId: string;
  nameIdFormat: string | null;
  sessionIndexes: string[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const attr = (name: string, value: string | null) => (value === null ? '' : ` ${name}="${esc(value)}"`);

export function logoutRequestFields(basics: { idpEntityId: string; sloUrl: string; nameId: string; now: Date; sessionIndex?: string | null }, overrides: Partial<LogoutRequestFields> = {}): LogoutRequestFields {
  return {
    id: samlId('_lr'),
    issueInstant: basics.now,
    notOnOrAfter: new Date(basics.now.getTime() + 5 * 60_000),
    destination: basics.sloUrl,
    issuer: basics.idpEntityId,
    nameId: basics.nameId,
    nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    sessionIndexes: basics.sessionIndex ? [basics.sessionIndex] : [],
    ...overrides,
  };
}

export function buildLogoutRequest(f: LogoutRequestFields): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${esc(f.id)}" Version="2.0" IssueInstant="${f.issueInstant.toISOString()}"` +
    `${attr('NotOnOrAfter', f.notOnOrAfter?.toISOString() ?? null)}${attr('Destination', f.destination)}>` +
    (f.issuer === null ? '' : `<saml:Issuer>${esc(f.issuer)}</saml:Issuer>`) +
    `<saml:NameID${attr('Format', f.nameIdFormat)}>${esc(f.nameId)}</saml:NameID>` +
    f.sessionIndexes.map((s) => `<samlp:SessionIndex>${esc(s)}</samlp:SessionIndex>`).join('') +
    `</samlp:LogoutRequest>`
  );
}

export interface LogoutResponseFields {
  id: string;
  issueInstant: Date;
  destination: string | null;
  issuer: string | null;
  inResponseTo: string | null;
  status: string;
}

export function buildLogoutResponse(f: LogoutResponseFields): string {
  return (
    `<samlp:LogoutResponse xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${esc(f.id)}" Version="2.0" IssueInstant="${f.issueInstant.toISOString()}"` +
    `${attr('Destination', f.destination)}${attr('InResponseTo', f.inResponseTo)}>` +
    (f.issuer === null ? '' : `<saml:Issuer>${esc(f.issuer)}</saml:Issuer>`) +
    `<samlp:Status><samlp:StatusCode Value="${esc(f.status)}"/></samlp:Status></samlp:LogoutResponse>`
  );
}

const HASH: Record<string, string> = { [ALG.rsaSha256]: 'sha256', [ALG.rsaSha1]: 'sha1' };

/**
 * The raw HTTP-Redirect query string (Bindings §3.4.4.1) for `xml`: signed with `keys` and
 * `sigAlg` (default the IdP's key, RSA-SHA256), or unsigned with `keys: null`.
 */
export function redirectQuery(kind: 'SAMLRequest' | 'SAMLResponse', xml: string, opts: { keys?: KeyPair | null; sigAlg?: string; relayState?: string } = {}): string {
  const parts = [`${kind}=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`];
  if (opts.relayState !== undefined) parts.push(`RelayState=${encodeURIComponent(opts.relayState)}`);
  const keys = opts.keys === undefined ? IDP_KEYS : opts.keys;
  if (!keys) return parts.join('&');
  const sigAlg = opts.sigAlg ?? ALG.rsaSha256;
  parts.push(`SigAlg=${encodeURIComponent(sigAlg)}`);
  const signature = sign(HASH[sigAlg] ?? 'sha256', Buffer.from(parts.join('&')), createPrivateKey(keys.key)).toString('base64');
  return `${parts.join('&')}&Signature=${encodeURIComponent(signature)}`;
}

/** The HTTP-POST binding form body: the message with an enveloped signature by `keys` (null: unsigned). */
export function postBody(kind: 'SAMLRequest' | 'SAMLResponse', xml: string, id: string, keys: KeyPair | null = IDP_KEYS, relayState?: string): string {
  const signed = keys ? signElement(xml, id, { keys }) : xml;
  const form = new URLSearchParams({ [kind]: Buffer.from(signed).toString('base64') });
  if (relayState !== undefined) form.set('RelayState', relayState);
  return form.toString();
}

export interface RedirectMessage {
  location: string;
  kind: 'SAMLRequest' | 'SAMLResponse';
  xml: string;
  relayState: string | null;
  sigAlg: string | null;
  /** The Redirect signature verifies with `certificatePem`. */
  verifies(certificatePem: string): boolean;
}

/** Decode an HTTP-Redirect binding URL Gatehouse sent (its LogoutRequest or LogoutResponse). */
export function decodeRedirectMessage(url: string): RedirectMessage {
  const u = new URL(url);
  const raw = new Map(u.search.slice(1).split('&').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const kind = raw.has('SAMLRequest') ? 'SAMLRequest' : 'SAMLResponse';
  const octets = [`${kind}=${raw.get(kind)}`, ...(raw.has('RelayState') ? [`RelayState=${raw.get('RelayState')}`] : []), `SigAlg=${raw.get('SigAlg')}`].join('&');
  const q = u.searchParams;
  return {
    location: `${u.origin}${u.pathname}`,
    kind,
    xml: inflateRawSync(Buffer.from(q.get(kind) ?? '', 'base64')).toString('utf8'),
    relayState: q.get('RelayState'),
    sigAlg: q.get('SigAlg'),
    verifies: (certificatePem) =>
      q.get('SigAlg') === ALG.rsaSha256 &&
      verify('sha256', Buffer.from(octets), createPublicKey(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'pem' })), Buffer.from(q.get('Signature') ?? '', 'base64')),
  };
}
