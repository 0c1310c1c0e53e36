import { DOMParser } from '@xmldom/xmldom';

/** XML namespaces of SAML 2.0, XML-DSig and XML-Enc. */
export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
} as const;

export class XmlRefused extends Error {
  override name = 'XmlRefused';
  constructor(readonly why: 'doctype' | 'malformed', message: string) {
    super(message);
  }
}

/**
 * Parse untrusted XML: any DOCTYPE or ENTITY declaration is refused before the parser sees the
 * text (no entity expansion, no external entities), and every parser error or warning is fatal.
 */
export function parseUntrustedXml(text: string): Document {
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) throw new XmlRefused('doctype', 'The XML contains a DOCTYPE or ENTITY declaration');
  const problems: string[] = [];
  const parser = new DOMParser({
    locator: {},
    errorHandler: {
      warning: (m: string) => void problems.push(m),
      error: (m: string) => void problems.push(m),
      fatalError: (m: string) => void problems.push(m),
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(text, 'text/xml') as unknown as Document;
  } catch (e) {
    throw new XmlRefused('malformed', `The XML does not parse: ${(e as Error).message.slice(0, 200)}`);
  }
  if (problems.length || !doc || !doc.documentElement) throw new XmlRefused('malformed', `The XML does not parse: ${(problems[0] ?? 'no root element').slice(0, 200)}`);
  // xmldom keeps a DocumentType node if one slipped through a different spelling: refuse it too.
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 10) throw new XmlRefused('doctype', 'The XML contains a DOCTYPE declaration');
  }
  return doc;
}

/** Every element in `root`'s subtree (root included) with this namespace and local name. */
export function descendants(root: Element | Document, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName) as unknown as ArrayLike<Element>).concat(
    'namespaceURI' in root && root.namespaceURI === ns && root.localName === localName ? [root as Element] : [],
  );
}

/** The direct children of `el` with this namespace and local name. */
export function children(el: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName) out.push(n as Element);
  }
  return out;
}

export const child = (el: Element, ns: string, localName: string): Element | null => children(el, ns, localName)[0] ?? null;

/**
 * The text of an element: its text and CDATA children only. A comment or processing instruction
 * inside (the canonicalization truncation trick) is not text and is not skipped over silently:
 * the caller gets the full concatenation, never the part before the comment.
 */
export function textOf(el: Element | null): string | null {
  if (!el) return null;
  let out = '';
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 3 || n.nodeType === 4) out += n.nodeValue ?? '';
  }
  return out.trim();
}

export const attr = (el: Element | null, name: string): string | null => (el && el.hasAttribute(name) ? el.getAttribute(name) : null);

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}
