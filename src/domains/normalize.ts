import { createRequire } from 'node:module';
import { domainToASCII } from 'node:url';
import { parse } from 'tldts';
import { AppError } from '../http/errors.js';

/**
 * Domain names as Gatehouse stores and compares them: ASCII (IDNA / punycode), lower case,
 * no trailing dot, letters-digits-hyphens labels. Only a hostname is accepted: a pasted email
 * address, URL, IP address or wildcard is refused with a message saying what to give instead.
 */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_INPUT = 512;

function invalid(input: string, message: string): AppError {
  const shown = input.length > 80 ? `${input.slice(0, 80)}…` : input;
  return new AppError('VALIDATION_FAILED', `"${shown}" is not a domain name: ${message}`, {
    issues: [{ path: 'domain', code: 'invalid_domain', message }],
  });
}

/** Normalise a domain name; throws AppError VALIDATION_FAILED when `input` is not a hostname. */
export function normalizeDomain(input: string): string {
  const raw = input.trim();
  if (!raw) throw invalid(input, 'give a domain such as example.com');
  if (raw.length > MAX_INPUT) throw invalid(input, 'too long');
  if (raw.includes('@')) throw invalid(input, 'give the domain only (the part after @), not an email address');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || raw.includes('/')) throw invalid(input, 'give the domain only (example.com), not a URL');
  if (raw.startsWith('[') || raw.includes(':')) throw invalid(input, 'give a domain name, not an IP address or host:port');
  if (/\s/.test(raw)) throw invalid(input, 'must not contain spaces');
  if (raw.includes('%')) throw invalid(input, 'must not contain %');
  if (raw.includes('*')) throw invalid(input, 'give one domain such as example.com; wildcards are not accepted');
  // Unicode (IDNA) → ASCII; lower-cases and maps full-width and ignorable characters. '' = invalid.
  let ascii = domainToASCII(raw);
  if (!ascii) throw invalid(input, 'not a valid (internationalised) domain name');
  if (ascii.endsWith('.')) ascii = ascii.slice(0, -1);
  if (ascii.length > 253) throw invalid(input, 'longer than 253 characters');
  const labels = ascii.split('.');
  for (const label of labels) {
    if (!label) throw invalid(input, 'has an empty label (two dots in a row, or a leading dot)');
    if (!LABEL.test(label)) {
      throw invalid(input, `the label "${label}" must be 1–63 letters, digits or inner hyphens`);
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!) || parse(ascii).isIp) throw invalid(input, 'give a domain name, not an IP address');
  return ascii;
}

/** The normalised domain part of an email address (after the last @). Throws VALIDATION_FAILED. */
export function emailDomain(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) {
    throw new AppError('VALIDATION_FAILED', 'Not an email address', { issues: [{ path: 'email', code: 'invalid_email', message: 'must be an email address' }] });
  }
  return normalizeDomain(email.slice(at + 1));
}

/** emailDomain, or null when the address has no domain we can normalise (never throws). */
export function emailDomainOrNull(email: string): string | null {
  try {
    return emailDomain(email);
  } catch {
    return null;
  }
}

// ---- generic domains ------------------------------------------------------------------------

const require = createRequire(import.meta.url);

function loadMailboxProviders(): ReadonlySet<string> {
  const list: unknown = require('email-providers/all.json');
  if (!Array.isArray(list) || !list.every((d): d is string => typeof d === 'string')) {
    throw new Error('email-providers/all.json is not a list of domains');
  }
  return new Set(list.map((d) => d.toLowerCase()));
}

let providers: ReadonlySet<string> | null = null;
/** The free-mail / generic mailbox provider list (loaded once, on first use; read-only data). */
function mailboxProviders(): ReadonlySet<string> {
  providers ??= loadMailboxProviders();
  return providers;
}

/**
 * Why a normalised domain cannot be claimed by one organization, or null when it can:
 * a public suffix (ICANN or private section of the Public Suffix List: `com`, `co.uk`,
 * `github.io`), or a generic mailbox provider (`gmail.com`, `outlook.com`, …, or a subdomain
 * of one). A registrable domain below a private suffix (`acme.github.io`) is fine.
 */
export function genericDomainReason(domain: string): string | null {
  const info = parse(domain, { allowPrivateDomains: true });
  if (info.domain === null) {
    if (info.isIcann || info.isPrivate) return `${domain} is a public suffix: anyone can register names below it, so no organization can own it`;
    return null;
  }
  const set = mailboxProviders();
  if (set.has(domain) || set.has(info.domain)) {
    return `${domain} is a public mailbox provider: its addresses belong to unrelated people, so no organization can own it`;
  }
  return null;
}

/** Throws 422 GENERIC_DOMAIN for a public suffix or mailbox provider; 400 for an unknown single label. */
export function assertClaimable(domain: string): void {
  const reason = genericDomainReason(domain);
  if (reason) throw new AppError('GENERIC_DOMAIN', reason, { domain });
  if (!domain.includes('.')) {
    throw new AppError('VALIDATION_FAILED', `"${domain}" is not a domain name: give a name with at least two labels, such as example.com`, {
      issues: [{ path: 'domain', code: 'invalid_domain', message: 'give a name with at least two labels, such as example.com' }],
    });
  }
}
